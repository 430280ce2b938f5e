"""One Tune trial of the RL agent: PPO iterations, trial checkpoints with versions, restore.

The trial is a Tune function trainable (:func:`rl_trial`) that runs the same RL run as
``editorbot train rl`` (:func:`editorbot.training.rl_train.run_rl`), reports its metrics (the
validation agreement that chooses ``best/``, and RLlib's) every iteration, saves an RLlib
checkpoint plus :data:`STATE_JSON` (iteration, editorbot and feature versions) every
``checkpoint_freq`` iterations, and continues from ``tune.get_checkpoint()`` after a retry, a
PBT exploit or ``Tuner.restore`` (refusing checkpoints of an incompatible version).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from editorbot.config import from_dict
from editorbot.errors import ParameterError
from editorbot.models.supervised import SupervisedConfig
from editorbot.training.supervised_train import SupervisedTrainConfig

logger = logging.getLogger(__name__)

STATE_JSON = "editorbot_trial.json"
"""Trial progress and versions stored beside the RLlib state in every trial checkpoint."""


@dataclass(frozen=True)
class SupervisedRun:
    """A supervised sweep file's run config (``model:`` and ``train:`` sections)."""

    model: SupervisedConfig = field(default_factory=SupervisedConfig)
    """Sizes of the supervised model."""
    train: SupervisedTrainConfig = field(default_factory=SupervisedTrainConfig)
    """How each trial trains it (epochs, batch, workers ...)."""


def trial_run_config(base: Any, config: dict[str, Any]) -> Any:
    """The base run config with one trial's sampled values filled in."""
    plain = dataclasses.asdict(base)
    for section, values in config.items():
        if isinstance(values, dict) and section in plain:
            plain[section] = {**plain[section], **values}
    return from_dict(type(base), plain, source="trial config")


def rl_trial(
    config: dict[str, Any],
    base: Any,
    data_ref: list[Any],
    sweep: Any,
    marker_dir: str,
    experiment: str,
) -> None:
    """One Tune trial: the same run as ``editorbot train rl``
    (:func:`~editorbot.training.rl_train.run_rl`: split, BC pretraining, PPO + BC, ``best/`` by
    validation agreement) for ``sweep.stop_iters`` iterations, reporting that run's metrics
    (``val_type_agreement`` ...) and a trial checkpoint after every iteration.

    Args:
        data_ref: one Ray object reference to the (tables, normaliser) of every track (in a
            list: ``tune.with_parameters`` passes a nested reference as it is), so the trial runs
            on any node.
        experiment: the sweep's storage location; the trial's run folder (``best/``,
            ``progress.jsonl``) is ``experiment/<trial folder>``.
    """
    import ray
    from ray import tune

    from editorbot.storage import RunStorage, join
    from editorbot.training.rl_train import run_rl

    run = trial_run_config(base, config)
    tables, normalizer = ray.get(data_ref[0])
    trial_dir = Path(tune.get_context().get_trial_dir()).name
    store = RunStorage.open(join(experiment, trial_dir))

    def report(it: int, algo: Any, result: dict[str, Any], metrics: dict[str, float]) -> None:
        flat = {**_metrics(result, sweep.metric, it, 0.0), **metrics}
        flat["iteration_wall_sec"] = result.get("time_this_iter_s", math.nan)
        flat.setdefault(sweep.metric, math.nan)
        if it % sweep.checkpoint_freq == 0 or it == sweep.stop_iters:
            with tempfile.TemporaryDirectory() as tmp:
                algo.save_to_path(tmp)
                (Path(tmp) / STATE_JSON).write_text(json.dumps(trial_state(it)))
                tune.report(flat, checkpoint=tune.Checkpoint.from_directory(tmp))
        else:
            tune.report(flat)
        _maybe_fail(sweep, it, marker_dir)

    def go(restore: tuple[Path, int] | None) -> None:
        run_rl(run, tables=tables, normalizer=normalizer, store=store,
               stop_iters=sweep.stop_iters, restore=restore, report=report,
               wait_for_actors=False)  # fmt: skip

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        go(None)
        return
    with checkpoint.as_directory() as d:
        done = int(read_trial_state(Path(d))["iteration"])
        logger.info("trial resumed after iteration %d", done)
        go((Path(d), done))


def trial_state(iteration: int) -> dict[str, Any]:
    """What a trial checkpoint records beside the RLlib state: progress and versions."""
    from editorbot import __version__
    from editorbot.audio.features import FEATURE_VERSION

    return {
        "iteration": iteration,
        "editorbot_version": __version__,
        "feature_version": FEATURE_VERSION,
    }


def read_trial_state(directory: Path) -> dict[str, Any]:
    """The trial state of a checkpoint, refused unless this editorbot can continue it.

    A checkpoint from another feature version would feed the policy observations with another
    meaning (loading garbage silently); another editorbot major.minor may have another module.

    Raises:
        CheckpointError: missing state, another feature version, or another editorbot release.
    """
    from editorbot.errors import CheckpointError

    path = directory / STATE_JSON
    try:
        state = dict(json.loads(path.read_text()))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: missing or unreadable ({e}); not an editorbot trial") from e
    here = trial_state(0)
    if state.get("feature_version") != here["feature_version"]:
        raise CheckpointError(
            f"{directory}: written with feature version {state.get('feature_version')!r}, this "
            f"editorbot computes {here['feature_version']!r}; start the sweep afresh"
        )
    theirs, ours = str(state.get("editorbot_version")), here["editorbot_version"]
    if theirs.split(".")[:2] != ours.split(".")[:2]:
        raise CheckpointError(
            f"{directory}: written by editorbot {theirs}, this is {ours}; resume with "
            f"editorbot {'.'.join(theirs.split('.')[:2])}.x or start the sweep afresh"
        )
    return state


def _metrics(result: dict[str, Any], metric: str, it: int, wall_sec: float) -> dict[str, Any]:
    """Flat scalar metrics of one iteration; ``metric`` is always present (NaN if not yet)."""
    runners = result.get("env_runners", {})
    learner = result.get("learners", {}).get("default_policy", {})
    flat = {
        "iteration": it,
        "iteration_wall_sec": wall_sec,
        "env_runners/episode_return_mean": runners.get("episode_return_mean", math.nan),
        "env_runners/num_env_steps_sampled": runners.get("num_env_steps_sampled", math.nan),
        **{f"learners/{k}": float(v) for k, v in learner.items() if _is_scalar_loss(k, v)},
    }
    flat.setdefault(metric, _lookup(result, metric))
    return {k: (math.nan if v is None else v) for k, v in flat.items()}


def _lookup(result: dict[str, Any], key: str) -> Any:
    node: Any = result
    for part in key.split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, int | float) else math.nan


def _is_scalar_loss(key: str, value: Any) -> bool:
    from editorbot.training.tensorboard import is_loss_key

    return isinstance(value, int | float) and is_loss_key(key)


class InjectedFailure(RuntimeError):
    """Raised once per trial by ``inject_failure_at_iter`` (fault-injection tests)."""


def _maybe_fail(sweep: Any, it: int, marker_dir: str) -> None:
    """Raise once per trial (a marker file in the experiment folder remembers it happened)."""
    if sweep.inject_failure_at_iter != it:
        return
    from ray import tune

    marker = Path(marker_dir) / f".injected_failure_{tune.get_context().get_trial_id()}"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        raise InjectedFailure(f"injected failure after iteration {it} (inject_failure_at_iter)")


def supervised_trainable(
    run: SupervisedRun, data_dir: Path, source: str, experiment: str | Path
) -> Any:
    """The supervised trial: a ``TorchTrainer`` per trial, its best model in the trial folder
    under ``experiment`` (the sweep's storage location: a folder or a URI every node reaches).

    The trial itself asks for almost nothing; its Train workers hold the CPUs.

    Raises:
        ParameterError: one trial's Train workers need more than the cluster has.
    """
    import ray
    from ray import tune

    from editorbot.training.supervised_data import load_examples, split_by_track

    tc = run.train
    have = ray.cluster_resources()
    if have.get("CPU", 0.0) < tc.num_workers + 0.01 or (tc.use_gpu and have.get("GPU", 0) < 1):
        raise ParameterError(
            f"{source}: train.num_workers {tc.num_workers} needs {tc.num_workers + 0.01:g} CPUs"
            f"{' and GPUs' if tc.use_gpu else ''}; the cluster has {have.get('CPU', 0):g} CPUs"
        )
    examples = load_examples(data_dir, run.model)
    train, val = split_by_track(examples, val_fraction=tc.val_fraction, seed=tc.seed)
    return tune.with_resources(
        tune.with_parameters(
            supervised_trial, base=run, train_ref=train, val_ref=val, experiment=str(experiment)
        ),
        {"CPU": 0.01},
    )


def supervised_trial(
    config: dict[str, Any], base: SupervisedRun, train_ref: Any, val_ref: Any, experiment: str
) -> None:
    """One supervised trial: ``supervised_train``'s Tune trial with this trial's folder in the
    experiment's storage (not the trial's local folder on whatever node it runs)."""
    from ray import tune

    from editorbot.storage import join
    from editorbot.training import supervised_train

    run = trial_run_config(base, config)
    trial_dir = Path(tune.get_context().get_trial_dir()).name
    plain = {
        "model": dataclasses.asdict(run.model),
        "train": dataclasses.asdict(run.train),
        "save_dir": str(join(experiment, trial_dir)),
    }
    supervised_train._trial(plain, train_ref, val_ref)
