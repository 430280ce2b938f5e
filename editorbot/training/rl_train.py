"""``editorbot train rl``: BC pretraining, then PPO with mixed BC, checkpoints and ``best/``.

How to run::

    editorbot train rl --config tune_configs/ppo_debug.yaml --data-dir training_data \\
        --save-dir models/rl_model --stop-iters 2

``--data-dir`` holds ``input/``, ``desired_output/`` and the labels in ``truth/`` (or pass
``--labels``); or pass ``--bc-data`` (a folder from ``editorbot bc-data``) to skip the features.

What to expect: ``SAVE_DIR/data/`` (tables and expert episodes, split train/validation),
``SAVE_DIR/bc/rl_module/`` (the BC policy), ``SAVE_DIR/checkpoints/iter_NNNN/`` (RLlib
checkpoints, resumable with ``--resume``), ``SAVE_DIR/best/`` (what ``editorbot edit`` loads:
chosen on the greedy policy's per-beat type agreement on the held-out tracks, the BC start
included), ``SAVE_DIR/progress.jsonl`` and TensorBoard scalars under ``SAVE_DIR/logs/``
(validation agreement, largest action-type share, BC, auxiliary and PPO losses, entropy, KL).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from editorbot import __version__
from editorbot.errors import DatasetError

logger = logging.getLogger(__name__)

NAME = "rl"
HELP = "PPO + behavioural cloning on the editing environment (RLlib)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML run config (tune_configs/*.yaml)")
    parser.add_argument("--data-dir", type=Path, help="training data (input/, truth/)")
    parser.add_argument("--labels", type=Path, help="decision lists (default DATA_DIR/truth)")
    parser.add_argument("--bc-data", type=Path, help="prebuilt `editorbot bc-data` folder")
    parser.add_argument("--save-dir", type=Path, required=True, help="run folder")
    parser.add_argument("--stop-iters", type=int, default=100, help="PPO iterations")
    parser.add_argument("--checkpoint-freq", type=int, default=1, help="iterations per save")
    parser.add_argument("--num-env-runners", type=int, help="override ppo.num_env_runners")
    parser.add_argument("--num-learners", type=int, help="override ppo.num_learners")
    parser.add_argument("--num-gpus-per-learner", type=float, help="override the GPUs/learner")
    parser.add_argument("--bc-weight", type=float, help="override ppo.bc_weight")
    parser.add_argument("--resume", action="store_true", help="continue from the last save")


def run(args: argparse.Namespace) -> int:
    from editorbot.training.ppo import load_run_config

    cfg = load_run_config(args.config)
    overrides = {
        key: getattr(args, key, None)
        for key in ("num_env_runners", "num_learners", "num_gpus_per_learner", "bc_weight")
    }
    ppo = dataclasses.replace(cfg.ppo, **{k: v for k, v in overrides.items() if v is not None})
    cfg = dataclasses.replace(cfg, ppo=ppo)
    bc_dir = args.bc_data or _build_bc_data(args, cfg.env)
    result = train_rl(
        cfg,
        bc_dir=bc_dir,
        save_dir=args.save_dir,
        stop_iters=args.stop_iters,
        checkpoint_freq=args.checkpoint_freq,
        resume=args.resume,
    )
    print(f"{args.save_dir}/best: validation type agreement {result['best_agreement']:.3f}")
    return 0


def train_rl(
    cfg: Any,
    *,
    bc_dir: str | Path,
    save_dir: str | Path,
    stop_iters: int,
    checkpoint_freq: int = 1,
    resume: bool = False,
) -> dict[str, Any]:
    """The whole run (see the module docstring); returns the best validation agreement."""
    import ray
    import torch

    from editorbot.training.ppo import ppo_config

    torch.set_num_threads(1)  # RAY_NOTES: the driver hosts the local learner and env runner
    save_dir = Path(save_dir)
    logger.info("resolved config: %s", json.dumps(dataclasses.asdict(cfg), default=str))
    train_dir, val_tables, normalizer = _split(Path(bc_dir), save_dir / "data", cfg)
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    env_config = {**cfg.env, "tables": str((train_dir / "tables").resolve()), "seed": cfg.seed}
    last = _last_checkpoint(save_dir) if resume else None
    start_module = None
    if last is None:
        start_module = _pretrain_bc(cfg, train_dir, save_dir / "bc", val_tables, env_config)
    best = _best_agreement(save_dir / "best") if last is not None else -1.0
    if start_module is not None:  # the BC policy competes for best/ too: PPO must beat it
        best = _log_bc_agreement(start_module, val_tables, env_config, save_dir)
    algo = ppo_config(
        cfg.ppo,
        env_config=env_config,
        module=cfg.module,
        expert_episodes=(train_dir / "episodes").resolve(),
        seed=cfg.seed,
    ).build_algo()
    try:
        if last is not None:
            algo.restore_from_path(str(last.resolve()))
        elif start_module is not None:
            # RAY_NOTES: restoring the learner's module also syncs the env runners.
            algo.restore_from_path(start_module, component=_BC_COMPONENT)
        if start_module is not None:
            write_best(save_dir / "best", algo.get_module(), normalizer, cfg, env_config,
                       val_tables, {"iteration": 0, "type_agreement": best})  # fmt: skip
        return _ppo_loop(algo, cfg, env_config, val_tables, normalizer, save_dir, stop_iters,
                         checkpoint_freq, best=best, start_iter=_iteration_of(last))  # fmt: skip
    finally:
        algo.stop()


def _ppo_loop(
    algo: Any,
    cfg: Any,
    env_config: dict[str, Any],
    val_tables: list[Any],
    normalizer: Any,
    save_dir: Path,
    stop_iters: int,
    checkpoint_freq: int,
    *,
    best: float = -1.0,
    start_iter: int = 0,
) -> dict[str, Any]:
    """PPO iterations ``start_iter + 1 .. stop_iters`` (a resumed run continues its numbering;
    ``best`` is the agreement ``best/`` already holds)."""
    from editorbot.inference import validation_metrics

    for it in range(start_iter + 1, stop_iters + 1):
        start = time.perf_counter()
        result = algo.train()
        module = algo.get_module()
        metrics = validation_metrics(module, val_tables, env_config)
        agreement = metrics["type_agreement"]
        _log_progress(save_dir, it, result, metrics, time.perf_counter() - start)
        if it % checkpoint_freq == 0 or it == stop_iters:
            _save_checkpoint(algo, save_dir / "checkpoints" / f"iter_{it:04d}")
        if agreement > best:
            best = agreement
            write_best(save_dir / "best", module, normalizer, cfg, env_config, val_tables,
                       {"iteration": it, "type_agreement": agreement})  # fmt: skip
    return {"best_agreement": best}


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
    from editorbot.inference import CHECKPOINT_JSON, KIND, MODULE_DIR

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
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


_BC_COMPONENT = "learner_group/learner/rl_module/default_policy"


def _pretrain_bc(
    cfg: Any, train_dir: Path, out: Path, val_tables: list[Any], env_config: dict[str, Any]
) -> str | None:
    """BC on the training episodes (see :class:`~editorbot.training.ppo.BCSettings`); returns
    the saved module's path, which PPO restores as :data:`_BC_COMPONENT`."""
    from editorbot.envs.editing_env import EditingEnv

    if cfg.bc.epochs <= 0 and cfg.bc.iterations <= 0:
        return None
    env = EditingEnv({**cfg.env, "tables": str(train_dir / "tables")})
    if cfg.bc.epochs <= 0:
        return _pretrain_rllib_bc(cfg, train_dir, out, env)
    import torch

    from editorbot.inference import validation_metrics
    from editorbot.training.bc_data import load_expert_arrays
    from editorbot.training.bc_fit import BCFitSettings, build_module, fit_bc

    b = cfg.bc
    settings = BCFitSettings(epochs=b.epochs, lr=b.lr, batch_size=b.train_batch_size,
                             weight_decay=b.weight_decay, aux_weight=cfg.ppo.aux_weight,
                             eval_every=b.eval_every)  # fmt: skip
    torch.manual_seed(cfg.seed)  # the initial weights: same seed, same BC start
    module = build_module(cfg.module, env.observation_space, env.action_space)
    obs, actions = load_expert_arrays(train_dir / "episodes")

    def held_out(m: Any) -> float:
        return float(validation_metrics(m, val_tables, env_config)["type_agreement"])

    fit = fit_bc(module, obs, actions, settings, seed=cfg.seed, evaluate=held_out)
    logger.info("BC: %d expert steps, best held-out type agreement %.3f at epoch %d",
                len(actions), fit["best_score"], fit["best_epoch"])  # fmt: skip
    path = (out / "rl_module").resolve()
    module.save_to_path(str(path))
    return str(path)


def _pretrain_rllib_bc(cfg: Any, train_dir: Path, out: Path, env: Any) -> str:
    """RLlib's BC algorithm on the offline episodes (Ray Data)."""
    from editorbot.training.ppo import bc_config

    algo = bc_config(
        cfg.bc,
        episodes=train_dir / "episodes",
        module=cfg.module,
        observation_space=env.observation_space,
        action_space=env.action_space,
    ).build_algo()
    try:
        for _ in range(cfg.bc.iterations):
            algo.train()
        algo.save_to_path(str(out.resolve()))
    finally:
        algo.stop()
    return str((out / "learner_group" / "learner" / "rl_module" / "default_policy").resolve())


def _log_bc_agreement(
    module_path: str, val_tables: list[Any], env_config: dict[str, Any], save_dir: Path
) -> float:
    """Validation agreement of the BC policy alone (row 0 of ``progress.jsonl``); returns it."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    from editorbot.inference import validation_metrics

    metrics = validation_metrics(RLModule.from_checkpoint(module_path), val_tables, env_config)
    _log_progress(save_dir, 0, {}, metrics, 0.0)
    return float(metrics["type_agreement"])


def _split(bc_dir: Path, out: Path, cfg: Any) -> tuple[Path, list[Any], Any]:
    """Copy the training tracks' tables and episodes to ``out/train``; load the held-out ones."""
    from editorbot.envs.track_table import load_tables
    from editorbot.training.bc_data import EPISODES_DIR, TABLES_DIR

    tables, normalizer = load_tables(bc_dir / TABLES_DIR)
    if normalizer is None:
        raise DatasetError(f"{bc_dir / TABLES_DIR}: no normalizer.json; rebuild with bc-data")
    names = [t.name for t in tables]
    order = np.random.default_rng(cfg.seed).permutation(len(names))
    n_val = max(1, round(cfg.validation_fraction * len(names))) if len(names) > 1 else 0
    val = {names[i] for i in order[:n_val]}
    train = out / "train"
    shutil.rmtree(train, ignore_errors=True)
    (train / TABLES_DIR).mkdir(parents=True)
    (train / EPISODES_DIR).mkdir(parents=True)
    shutil.copy(bc_dir / TABLES_DIR / "normalizer.json", train / TABLES_DIR)
    for name in names:
        if name not in val:
            shutil.copy(bc_dir / TABLES_DIR / f"{name}.npz", train / TABLES_DIR)
            shutil.copy(bc_dir / EPISODES_DIR / f"{name}.parquet", train / EPISODES_DIR)
    val_tables = [t for t in tables if t.name in val] or tables  # one track: validate on it
    logger.info("train on %d tracks, validate on %s", len(names) - n_val, sorted(val))
    return train, val_tables, normalizer


def _build_bc_data(args: argparse.Namespace, env_cfg: dict[str, Any]) -> Path:
    from editorbot.training import bc_data

    if args.data_dir is None:
        raise DatasetError("train rl: pass --data-dir (with truth/ or --labels) or --bc-data")
    out = args.save_dir / "bc_data"
    labels = args.labels or args.data_dir / "truth"
    bc_data.bc_data_from_labels(labels, args.data_dir, out, env_config=dict(env_cfg))
    return out


def _save_checkpoint(algo: Any, path: Path) -> None:
    """Save beside ``path`` and rename: a driver killed mid-save leaves no half checkpoint
    for ``--resume`` to pick up (``_last_checkpoint`` only sees ``iter_*``)."""
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp.resolve()))
    tmp.rename(path)


def _iteration_of(checkpoint: Path | None) -> int:
    """``iter_0007`` → 7 (0 = a fresh run)."""
    return int(checkpoint.name.removeprefix("iter_")) if checkpoint is not None else 0


def _best_agreement(best_dir: Path) -> float:
    from editorbot.inference import CHECKPOINT_JSON

    try:
        meta = json.loads((best_dir / CHECKPOINT_JSON).read_text())
        return float(meta["validation"]["type_agreement"])
    except (OSError, ValueError, KeyError):
        return -1.0


def _last_checkpoint(save_dir: Path) -> Path | None:
    saved = sorted((save_dir / "checkpoints").glob("iter_*"))
    return saved[-1] if saved else None


def _log_progress(
    save_dir: Path, it: int, result: dict[str, Any], metrics: dict[str, float], wall_sec: float
) -> None:
    learner = result.get("learners", {}).get("default_policy", {})
    runners = result.get("env_runners", {})
    row = {
        "iteration": it,
        "wall_sec": wall_sec,
        **{f"val_{k}": v for k, v in metrics.items()},
        "episode_return_mean": runners.get("episode_return_mean"),
        **{k: learner[k] for k in sorted(learner) if _is_loss_key(k)},
    }
    save_dir.mkdir(parents=True, exist_ok=True)
    with open(save_dir / "progress.jsonl", "a") as f:
        f.write(json.dumps(row, default=float) + "\n")
    writer = _tensorboard(save_dir / "logs")
    for key, value in row.items():
        if key != "iteration" and isinstance(value, int | float):
            writer.add_scalar(key, value, it)
    writer.flush()
    logger.info("iter %d: %s", it, row)
    if metrics.get("type_collapse"):
        logger.warning("iter %d: action-type collapse (one type > 90%% of actions)", it)


_WRITERS: dict[Path, Any] = {}


def _tensorboard(path: Path) -> Any:
    """One TensorBoard writer per log folder for the life of the process."""
    if path not in _WRITERS:
        from torch.utils.tensorboard import SummaryWriter

        _WRITERS[path] = SummaryWriter(str(path))
    return _WRITERS[path]


def _is_loss_key(key: str) -> bool:
    return any(s in key for s in ("loss", "entropy", "kl", "bc_", "aux_"))
