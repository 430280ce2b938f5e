"""``editorbot train rl``: BC pretraining, then PPO with mixed BC, checkpoints and ``best/``.

How to run::

    editorbot train rl --config tune_configs/ppo_debug.yaml --data-dir training_data \\
        --save-dir models/rl_model --stop-iters 2

``--data-dir`` holds ``input/``, ``desired_output/`` and the labels in ``truth/`` (or pass
``--labels``); or pass ``--bc-data`` (a folder from ``editorbot bc-data``) to skip the features.

``--save-dir`` is a folder or a storage URI (``s3://BUCKET/run``, ``gs://...``; see
:mod:`editorbot.storage`): through a URI the run works in a local staging folder and pushes
``best/``, each checkpoint, ``progress.jsonl`` and the curves to it as they are written, so
``editorbot edit --checkpoint s3://BUCKET/run/best`` works from any machine.

Where each artefact goes on a cluster (no remote actor reads the driver's disk): the training
tables are ``ray.put`` once and reach every env runner through the object store (a reference in
``env_config["tables"]``); the expert (observation, action) arrays of the mixed BC loss likewise
reach every learner (``learner_config_dict["bc_expert"]``); BC pretraining runs inside the
learners (:mod:`editorbot.training.bc_learner`: on a remote learner's node and GPU, each learner
on its own shard of the expert rows) and learner 0 hands the weights back; checkpoints and
``best/`` are written by the driver and pushed to the storage location, which every node and a
later ``edit`` reach.

What to expect: ``SAVE_DIR/data/`` (tables and expert episodes of the training tracks; the
tracks are split three ways: training, validation — which chooses the BC epoch and ``best/`` —
and test, scored alongside but never used to choose anything),
``SAVE_DIR/bc/rl_module/`` (the BC policy), ``SAVE_DIR/checkpoints/iter_NNNN/`` (RLlib
checkpoints, resumable with ``--resume``), ``SAVE_DIR/best/`` (what ``editorbot edit`` loads:
chosen on the greedy policy's per-beat type agreement on the validation tracks, the BC start
included), ``SAVE_DIR/progress.jsonl`` and TensorBoard scalars under ``SAVE_DIR/logs/``
(validation and test agreement, largest action-type share, BC, auxiliary and PPO losses,
entropy, KL) and ``SAVE_DIR/curves.png`` (the agreement curves).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from editorbot import __version__
from editorbot.atomic import replace_dir
from editorbot.errors import CheckpointError, DatasetError
from editorbot.storage import RunStorage, as_location, join
from editorbot.training import tensorboard

logger = logging.getLogger(__name__)

NAME = "rl"
HELP = "PPO + behavioural cloning on the editing environment (RLlib)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML run config (tune_configs/*.yaml)")
    parser.add_argument("--data-dir", type=Path, help="training data (input/, truth/)")
    parser.add_argument("--labels", type=Path, help="decision lists (default DATA_DIR/truth)")
    parser.add_argument("--bc-data", type=Path, help="prebuilt `editorbot bc-data` folder")
    parser.add_argument(
        "--save-dir", type=as_location, required=True,
        help="run folder, or a storage URI every node reaches (s3://BUCKET/run, gs://...)",
    )  # fmt: skip
    parser.add_argument("--stop-iters", type=int, default=100, help="PPO iterations")
    parser.add_argument("--checkpoint-freq", type=int, default=1, help="iterations per save")
    parser.add_argument("--num-env-runners", type=int, help="override ppo.num_env_runners")
    parser.add_argument("--num-learners", type=int, help="override ppo.num_learners")
    parser.add_argument("--num-gpus-per-learner", type=float, help="override the GPUs/learner")
    parser.add_argument("--bc-weight", type=float, help="override ppo.bc_weight")
    parser.add_argument("--resume", action="store_true", help="continue from the last save")


def run(args: argparse.Namespace) -> int:
    from editorbot.training.ppo import load_run_config

    # An unusable location stops here, before Ray; a fresh run (no --resume) starts with an
    # empty staging folder, not with an earlier run's rows and checkpoints of the same URI.
    store = RunStorage.open(args.save_dir, fresh=not args.resume)
    cfg = load_run_config(args.config)
    overrides = {
        key: getattr(args, key, None)
        for key in ("num_env_runners", "num_learners", "num_gpus_per_learner", "bc_weight")
    }
    ppo = dataclasses.replace(cfg.ppo, **{k: v for k, v in overrides.items() if v is not None})
    cfg = dataclasses.replace(cfg, ppo=ppo)
    bc_dir = args.bc_data or _build_bc_data(args, cfg.env, store.local)
    result = train_rl(
        cfg,
        bc_dir=bc_dir,
        save_dir=store,
        stop_iters=args.stop_iters,
        checkpoint_freq=args.checkpoint_freq,
        resume=args.resume,
    )
    best = join(args.save_dir, "best")
    print(f"{best}: validation type agreement {result['best_agreement']:.3f}")
    return 0


def train_rl(
    cfg: Any,
    *,
    bc_dir: str | Path,
    save_dir: str | Path | RunStorage,
    stop_iters: int,
    checkpoint_freq: int = 1,
    resume: bool = False,
) -> dict[str, Any]:
    """The whole run (see the module docstring).

    Args:
        save_dir: the run folder or storage URI (see :mod:`editorbot.storage`), or one opened.

    Returns:
        ``best_agreement`` (validation, the BC start included), ``bc`` and ``best`` (the
        validation and test agreement of the BC start and of the chosen ``best/``).
    """
    tables, normalizer = _load_tables(Path(bc_dir))
    store = save_dir if isinstance(save_dir, RunStorage) else RunStorage.open(save_dir)
    return run_rl(cfg, tables=tables, normalizer=normalizer, store=store, stop_iters=stop_iters,
                  checkpoint_freq=checkpoint_freq, resume=resume)  # fmt: skip


Report = Callable[[int, Any, dict[str, Any], dict[str, float]], None]
"""``report(iteration, algo, rllib_result, metrics)``: called after each PPO iteration, once
``best/`` is up to date (``metrics``: the validation and test agreement of that iteration)."""


def run_rl(
    cfg: Any,
    *,
    tables: list[Any],
    normalizer: Any,
    store: RunStorage,
    stop_iters: int,
    checkpoint_freq: int = 1,
    resume: bool = False,
    restore: tuple[Path, int] | None = None,
    report: Report | None = None,
    wait_for_actors: bool = True,
) -> dict[str, Any]:
    """The one RL run, behind ``train rl`` and every ``tune`` trial: the train / validation /
    test split of ``tables``, BC pretraining (epoch chosen on validation), then PPO + BC with
    ``best/`` chosen on validation agreement (the BC start included).

    Args:
        resume: continue from the run's own last checkpoint (``train rl --resume``).
        restore: instead, continue from this checkpoint folder after its iteration (a Tune
            trial's checkpoint; BC is not run again).
        report: called after every iteration (a Tune trial reports and checkpoints there);
            with it the run saves no ``checkpoints/`` of its own.
        wait_for_actors: wait (``ppo.placement_timeout_s``) for the cluster to offer the env
            runners' and learners' resources; off in a Tune trial, whose placement group
            already holds them (a second reservation could never fit).

    Returns: see :func:`train_rl`.
    """
    import ray
    import torch

    from editorbot.training.ppo import ppo_config, wait_for_resources

    torch.set_num_threads(1)  # this process hosts the local learner and env runner
    save_dir = store.local
    if resume or restore is not None:
        _pull_for_resume(store)
    _RUN_START[save_dir] = time.perf_counter()
    logger.info("resolved config: %s", json.dumps(dataclasses.asdict(cfg), default=str))
    split = _split_tables(tables, normalizer, save_dir / "data", cfg)
    if not ray.is_initialized():
        from editorbot.training.local_ray import init_local

        init_local()
    from editorbot.training.bc_data import load_expert_arrays

    # Through the object store, not by path: env runners and learners may be on nodes that do
    # not see this machine's disk.
    env_config = {**split.env, "tables": ray.put(split.train), "seed": cfg.seed}
    expert = ray.put(load_expert_arrays(split.train_dir / "episodes"))
    last = _last_checkpoint(save_dir) if resume else None
    start_iter = _iteration_of(last)
    if restore is not None:
        last, start_iter = restore
    best = BestCheckpoint.read(save_dir / "best") if last is not None else BestCheckpoint()
    # A resumed run has done its value warm-up already (the learner counts from its start).
    warmup_left = max(0, cfg.ppo.vf_warmup_iters - start_iter)
    ppo = dataclasses.replace(cfg.ppo, vf_warmup_iters=warmup_left)
    algo_cfg = ppo_config(
        ppo,
        env_config=env_config,
        module=cfg.module,
        expert=expert,
        seed=cfg.seed,
    )
    if wait_for_actors:
        wait_for_resources(algo_cfg, cfg.ppo.placement_timeout_s)  # RLlib would wait forever
    algo = algo_cfg.build_algo()
    try:
        if last is not None:
            algo.restore_from_path(str(last.resolve()))
        elif cfg.bc.epochs > 0:
            bc_module = _pretrain_bc(algo, cfg, split, save_dir / "bc", env_config, expert)
            # The BC policy competes for best/ too: PPO must beat it.
            best = _log_bc_agreement(bc_module, split, env_config, save_dir)
            _write_best(store, algo.get_module(), cfg, env_config, split, best)
        best = _ppo_loop(algo, cfg, env_config, split, store, stop_iters, checkpoint_freq,
                         best=best, start_iter=start_iter, report=report)  # fmt: skip
    finally:
        algo.stop()
    _plot_curves(save_dir)
    for name in ("curves.png", "logs", "progress.jsonl"):
        store.push(name)
    bc = _row(save_dir, 0)
    return {
        "best_agreement": best.val,
        "best": {"iteration": best.iteration, "val": best.val, "test": best.test},
        "bc": {"val": bc.get("val_type_agreement"), "test": bc.get("test_type_agreement")},
    }


@dataclasses.dataclass(frozen=True)
class TrackSplit:
    """The tracks of one run: training (folder), validation and test (tables in memory)."""

    train_dir: Path
    """``SAVE_DIR/data/train`` with ``tables/`` and ``episodes/`` of the training tracks."""
    train: list[Any]
    """Training tables."""
    val: list[Any]
    """Validation tables: choose the BC epoch and ``best/``."""
    test: list[Any]
    """Test tables: reported, never used to choose (may be empty)."""
    normalizer: Any
    """The feature normaliser of the tables."""
    env: dict[str, Any]
    """The run's env config (``cfg.env``, plus the shown target ratio when it is hidden)."""


@dataclasses.dataclass(frozen=True)
class BestCheckpoint:
    """What ``best/`` holds: the iteration (0 = BC) and its validation / test agreement."""

    iteration: int = -1
    val: float = -1.0
    test: float | None = None

    @classmethod
    def read(cls, best_dir: Path) -> BestCheckpoint:
        """What ``best_dir`` holds; nothing (``BestCheckpoint()``) when it does not exist.

        Raises:
            CheckpointError: it exists but its description is unreadable: resuming would
                replace it with whatever policy comes next, maybe a worse one.
        """
        from editorbot.inference.rl import CHECKPOINT_JSON

        if not best_dir.exists():
            return cls()
        try:
            v = json.loads((best_dir / CHECKPOINT_JSON).read_text())["validation"]
            test = v.get("test_type_agreement")
            return cls(int(v["iteration"]), float(v["type_agreement"]),
                       None if test is None else float(test))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(
                f"{best_dir / CHECKPOINT_JSON}: unreadable ({type(e).__name__}: {e}); --resume "
                "would replace this best/ without knowing its score: restore it, or move it "
                "away to start best/ afresh"
            ) from e


def _ppo_loop(
    algo: Any,
    cfg: Any,
    env_config: dict[str, Any],
    split: TrackSplit,
    store: RunStorage,
    stop_iters: int,
    checkpoint_freq: int,
    *,
    best: BestCheckpoint,
    start_iter: int = 0,
    report: Report | None = None,
) -> BestCheckpoint:
    """PPO iterations ``start_iter + 1 .. stop_iters`` (a resumed run continues its numbering;
    ``best`` is what ``best/`` already holds); returns what it holds at the end."""
    save_dir = store.local
    for it in range(start_iter + 1, stop_iters + 1):
        start = time.perf_counter()
        result = algo.train()
        trained = time.perf_counter()
        module = algo.get_module()
        metrics = _agreements(module, split, env_config)
        metrics["train_sec"] = trained - start  # sample + learn; the rest of wall_sec validates
        _log_progress(save_dir, it, result, metrics, time.perf_counter() - start)
        if report is None and (it % checkpoint_freq == 0 or it == stop_iters):
            _save_checkpoint(algo, store, it)
        if metrics["val_type_agreement"] > best.val:
            best = BestCheckpoint(
                it, metrics["val_type_agreement"], metrics.get("test_type_agreement")
            )
            _write_best(store, module, cfg, env_config, split, best)
        store.push("progress.jsonl")
        if report is not None:
            report(it, algo, result, metrics)
    return best


def _agreements(module: Any, split: TrackSplit, env_config: dict[str, Any]) -> dict[str, float]:
    """Greedy-policy metrics on the validation and the test tracks, as ``edit`` would run:
    every track shows the one target ratio ``best/`` stores (an edit knows no human edit)."""
    from editorbot.inference.rl import validation_metrics

    ratio = _edit_target_ratio(split.train)
    out: dict[str, float] = {}
    for prefix, tables in (("val", split.val), ("test", split.test)):
        if tables:
            shown = [dataclasses.replace(t, target_ratio=ratio) for t in tables]
            metrics = validation_metrics(module, shown, env_config)
            out |= {f"{prefix}_{k}": v for k, v in metrics.items()}
    return out


def _edit_target_ratio(tables: list[Any]) -> float:
    """[ratio] the edit/raw duration ratio ``best/`` stores for ``edit``: the training mean."""
    return float(np.mean([t.target_ratio for t in tables])) if tables else 1.0


def _write_best(
    store: RunStorage,
    module: Any,
    cfg: Any,
    env_config: dict[str, Any],
    split: TrackSplit,
    best: BestCheckpoint,
) -> None:
    """``best/`` in the staging folder, then pushed (its description last: see
    :func:`editorbot.storage.upload_dir`)."""
    from editorbot.inference.rl import CHECKPOINT_JSON

    validation = {"iteration": best.iteration, "type_agreement": best.val}
    if best.test is not None:
        validation["test_type_agreement"] = best.test
    # write_best stores the tables' mean target ratio: the training tracks' (_edit_target_ratio),
    # which `edit` shows unless the user gives a target duration (so that one still reaches it).
    shown = {k: v for k, v in env_config.items() if k != "shown_target_ratio"}
    write_best(store.local / "best", module, split.normalizer, cfg, shown, split.train,
               validation)  # fmt: skip
    store.push("best", last=CHECKPOINT_JSON)


def write_best(
    path: Path,
    module: Any,
    normalizer: Any,
    cfg: Any,
    env_config: dict[str, Any],
    tables: list[Any],
    validation: dict[str, Any],
) -> None:
    """Write a self-describing checkpoint (module, normaliser, configs) into ``path``, replacing
    it only once the new one is complete."""
    from editorbot.inference.rl import CHECKPOINT_JSON, KIND, MODULE_DIR

    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    module.save_to_path(str((tmp / MODULE_DIR).resolve()))
    normalizer.save(tmp / "normalizer.json")
    from editorbot.audio.features import FEATURE_VERSION

    meta = {
        "kind": KIND,
        "version": __version__,
        "feature_version": FEATURE_VERSION,
        "env_config": {k: v for k, v in env_config.items() if k not in ("tables", "seed")},
        "module_config": dataclasses.asdict(cfg.module),
        "run_config": dataclasses.asdict(cfg),
        "target_ratio": float(np.mean([t.target_ratio for t in tables])) if tables else 1.0,
        "validation": validation,
    }
    (tmp / CHECKPOINT_JSON).write_text(json.dumps(meta, indent=1, default=str))
    replace_dir(tmp, path)  # one atomic swap: a crash leaves the old best/ or the new one


def _pretrain_bc(
    algo: Any,
    cfg: Any,
    split: TrackSplit,
    out: Path,
    env_config: dict[str, Any],
    expert: Any,
) -> Any:
    """BC on the training episodes (see :class:`~editorbot.training.ppo.BCSettings`) in the
    algorithm's learners (:mod:`editorbot.training.bc_learner`), the epoch chosen on the
    validation tracks; the env runners then hold the BC policy. Returns a driver copy of it,
    also saved to ``out/rl_module``."""
    import ray
    import torch

    from editorbot.envs.editing_env import EditingEnv
    from editorbot.training.bc_fit import build_module
    from editorbot.training.bc_learner import pretrain_on_learners

    results = pretrain_on_learners(
        algo, cfg, expert=expert, val_tables=ray.put(split.val), env_config=env_config,
        target_ratio=_edit_target_ratio(split.train),
    )  # fmt: skip
    state = results[0].state
    assert state is not None  # learner 0 returns its weights
    env = EditingEnv({**split.env, "tables": split.train})
    module = build_module(cfg.module, env.observation_space, env.action_space)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    module.eval()
    module.save_to_path(str((out / "rl_module").resolve()))
    return module


def _log_bc_agreement(
    module: Any, split: TrackSplit, env_config: dict[str, Any], save_dir: Path
) -> BestCheckpoint:
    """Validation and test agreement of the BC policy alone (row 0 of ``progress.jsonl``)."""
    metrics = _agreements(module, split, env_config)
    _log_progress(save_dir, 0, {}, metrics, 0.0)
    return BestCheckpoint(0, metrics["val_type_agreement"], metrics.get("test_type_agreement"))


def _load_tables(bc_dir: Path) -> tuple[list[Any], Any]:
    """The tables and normaliser of an ``editorbot bc-data`` folder."""
    from editorbot.envs.track_table import load_tables
    from editorbot.training.bc_data import TABLES_DIR

    tables, normalizer = load_tables(bc_dir / TABLES_DIR)
    if normalizer is None:
        raise DatasetError(f"{bc_dir / TABLES_DIR}: no normalizer.json; rebuild with bc-data")
    return tables, normalizer


def split_tracks(bc_dir: Path, out: Path, cfg: Any) -> TrackSplit:
    """:func:`_split_tables` of an ``editorbot bc-data`` folder."""
    return _split_tables(*_load_tables(bc_dir), out, cfg)


def _split_tables(tables: list[Any], normalizer: Any, out: Path, cfg: Any) -> TrackSplit:
    """Split the tracks into training, validation and test by a seeded permutation; write the
    training tracks' tables and episodes (replayed with the run's env config) to ``out/train``.

    At least one track validates (when there are 2+) and one trains; the test share is taken
    only while a training track is left. One track alone trains and validates (smoke runs).
    """
    from editorbot.training.bc_data import write_bc_data

    if not cfg.label_confidence:
        from editorbot.envs.track_table import uniform_confidence

        tables = [uniform_confidence(t) for t in tables]
    n = len(tables)
    order = np.random.default_rng(cfg.seed).permutation(n)
    n_val = max(1, round(cfg.validation_fraction * n)) if n > 1 else 0
    n_test = min(round(cfg.test_fraction * n), max(n - n_val - 1, 0))
    val = [tables[i] for i in order[:n_val]]
    test = [tables[i] for i in order[n_val : n_val + n_test]]
    train = [tables[i] for i in order[n_val + n_test :]]
    env = dict(cfg.env)
    if cfg.hide_target_ratio:
        env["shown_target_ratio"] = _edit_target_ratio(train)
    # Re-replay the training experts with the run's env config, so the BC observations are the
    # ones PPO's episodes show (window, shown target ratio).
    train_dir = out / "train"
    shutil.rmtree(train_dir, ignore_errors=True)
    write_bc_data(train_dir, train, normalizer, env_config=env)
    logger.info("train on %d tracks, validate on %s, test on %s", len(train),
                sorted(t.name for t in val), sorted(t.name for t in test))  # fmt: skip
    return TrackSplit(train_dir, train, val or tables, test, normalizer, env)  # one track: validate


def _build_bc_data(args: argparse.Namespace, env_cfg: dict[str, Any], local: Path) -> Path:
    from editorbot.training import bc_data

    if args.data_dir is None:
        raise DatasetError("train rl: pass --data-dir (with truth/ or --labels) or --bc-data")
    out = local / "bc_data"
    labels = args.labels or args.data_dir / "truth"
    bc_data.bc_data_from_labels(labels, args.data_dir, out, env_config=dict(env_cfg))
    return out


def _save_checkpoint(algo: Any, store: RunStorage, it: int) -> None:
    """Save ``checkpoints/iter_NNNN`` beside its place and rename: a driver killed mid-save
    leaves no half checkpoint for ``--resume`` to pick up (``_last_checkpoint`` only sees
    ``iter_*``). Through a URI it is then pushed, and ``checkpoints/latest.json`` (one object,
    written after the folder) names it for a resume from another machine."""
    path = store.local / "checkpoints" / f"iter_{it:04d}"
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp.resolve()))
    replace_dir(tmp, path)  # a run started again in the same folder replaces its old save
    if store.remote:
        store.push(f"checkpoints/{path.name}")
        (path.parent / _LATEST).write_text(json.dumps({"checkpoint": path.name}))
        store.push(f"checkpoints/{_LATEST}")


_LATEST = "latest.json"


def _pull_for_resume(store: RunStorage) -> None:
    """Bring a URI run's ``best/``, ``progress.jsonl`` and last checkpoint into its staging
    folder (a resume on another machine starts with an empty one)."""
    if not store.remote:
        return
    store.pull("best")
    store.pull("progress.jsonl")
    if store.pull(f"checkpoints/{_LATEST}"):
        name = json.loads((store.local / "checkpoints" / _LATEST).read_text())["checkpoint"]
        store.pull(f"checkpoints/{name}")


def _iteration_of(checkpoint: Path | None) -> int:
    """``iter_0007`` → 7 (0 = a fresh run)."""
    return int(checkpoint.name.removeprefix("iter_")) if checkpoint is not None else 0


def _last_checkpoint(save_dir: Path) -> Path | None:
    saved = sorted((save_dir / "checkpoints").glob("iter_*"))
    return saved[-1] if saved else None


def _row(save_dir: Path, it: int) -> dict[str, Any]:
    """Row ``it`` of ``progress.jsonl`` (the last one written for it; {} if none)."""
    rows = _read_rows(save_dir)
    return next((r for r in reversed(rows) if r.get("iteration") == it), {})


def _read_rows(save_dir: Path) -> list[dict[str, Any]]:
    path = save_dir / "progress.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _plot_curves(save_dir: Path) -> None:
    """``SAVE_DIR/curves.png``: validation and test agreement, BC start at iteration 0."""
    from editorbot.evaluation.plots import plot_curves

    plot_curves(_read_rows(save_dir), path=save_dir / "curves.png")


def _log_progress(
    save_dir: Path, it: int, result: dict[str, Any], metrics: dict[str, float], wall_sec: float
) -> None:
    learner = result.get("learners", {}).get("default_policy", {})
    runners = result.get("env_runners", {})
    row = {
        "iteration": it,
        "wall_sec": wall_sec,  # this iteration: training + validation
        "elapsed_sec": time.perf_counter() - _RUN_START.setdefault(save_dir, time.perf_counter()),
        **metrics,
        "episode_return_mean": runners.get("episode_return_mean"),
        "env_steps": runners.get("num_env_steps_sampled"),  # this iteration's samples
        **{k: learner[k] for k in sorted(learner) if tensorboard.is_loss_key(k)},
    }
    save_dir.mkdir(parents=True, exist_ok=True)
    with open(save_dir / "progress.jsonl", "a") as f:
        f.write(json.dumps(row, default=float) + "\n")
    writer = tensorboard.writer(save_dir / "logs")
    for key, value in row.items():
        if key != "iteration" and isinstance(value, int | float):
            writer.add_scalar(key, value, it)
    writer.flush()
    logger.info("iter %d: %s", it, row)
    if metrics.get("val_type_collapse"):
        logger.warning("iter %d: action-type collapse (one type > 90%% of actions)", it)


_RUN_START: dict[Path, float] = {}
"""[s] ``perf_counter`` at the start of each run in this process (``elapsed_sec`` of a row)."""
