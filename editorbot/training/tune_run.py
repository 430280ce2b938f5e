"""Ray Tune sweeps of the RL agent: YAML → :class:`SweepConfig` → ``tune.Tuner`` (or restore).

A sweep file is an RL run config (``editorbot.training.ppo.RLRunConfig``: ``env``, ``module``,
``ppo``, ``bc`` ...) plus an optional ``tune:`` section that maps one to one onto
:class:`SweepConfig`. Without a ``tune:`` section the file is a single run with the defaults
below, so ``editorbot tune tune_configs/ppo_debug.yaml`` works on the debug config as is.

Search spaces name a run-config field by its dotted path and one Tune sampler::

    tune:
      search_space:
        ppo.lr: {loguniform: [1.0e-5, 1.0e-3]}
        module.kernel_size: {choice: [5, 9]}

Each trial (:mod:`editorbot.training.tune_trial`) is a function trainable running PPO from
:func:`editorbot.training.ppo.ppo_config`; it checkpoints through ``tune.report`` and restores
from ``tune.get_checkpoint()`` when Tune retries it (``FailureConfig(max_failures)``), when PBT
exploits it, or when the sweep is resumed with ``Tuner.restore(..., resume_errored=True)``. The
trial asks for the algorithm's own resource request (RLlib's ``default_resource_request``: 1 CPU
for the driver + 1 per env runner + the learners), and a sweep that cannot fit the cluster
fails before it starts (an infeasible trial would stay PENDING forever).

Method: ASHA, https://arxiv.org/abs/1810.05934; PBT, https://arxiv.org/abs/1711.09846.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from editorbot.config import from_dict, load_yaml
from editorbot.errors import ParameterError

logger = logging.getLogger(__name__)

SAMPLERS = ("uniform", "loguniform", "choice", "randint", "grid_search")
"""Tune samplers a search-space entry may name (each takes the list it is given as arguments)."""


@dataclass(frozen=True)
class SchedulerConfig:
    """Trial scheduler (``fifo`` runs every trial to ``stop_iters``)."""

    kind: str = "fifo"
    """[name] ``fifo``, ``asha`` or ``pbt``."""
    grace_period: int = 1
    """[iterations] ASHA: every trial runs at least this long before it can be stopped."""
    reduction_factor: float = 2.0
    """[ratio] ASHA: keep 1/reduction_factor of the trials at each rung."""
    perturbation_interval: int = 2
    """[iterations] PBT: how often the bottom trials copy and perturb the top ones."""


@dataclass(frozen=True)
class SweepConfig:
    """The ``tune:`` section of a sweep file: what to search, how to stop, how to recover."""

    trainable: str = "rl"
    """[name] ``rl`` (PPO + BC, the file is an RLRunConfig) or ``supervised`` (``model:`` and
    ``train:`` sections: SupervisedConfig, SupervisedTrainConfig)."""
    name: str = "editorbot_rl"
    """[folder name] experiment directory under the storage path."""
    metric: str = "val_type_agreement"
    """[result key] what the scheduler and the results table rank trials by; for RL trials by
    default the validation agreement that ``train rl`` chooses ``best/`` by."""
    mode: str = "max"
    """[max|min] whether a larger metric is better."""
    num_samples: int = 1
    """[trials] samples of the search space (times each grid point)."""
    stop_iters: int = 2
    """[iterations] PPO iterations per trial."""
    checkpoint_freq: int = 1
    """[iterations] between trial checkpoints (the last iteration is always saved)."""
    max_failures: int = 2
    """[retries] per trial, each resuming from the trial's last checkpoint."""
    max_concurrent_trials: int = 0
    """[trials] at once (0 = as many as the cluster's CPUs allow)."""
    search_space: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    """Dotted run-config field → ``{sampler: [args]}`` (samplers in :data:`SAMPLERS`)."""
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    """Trial scheduler."""
    inject_failure_at_iter: int = 0
    """[iteration] fault injection: each trial raises once after this iteration (0 = off)."""

    def __post_init__(self) -> None:
        # A folder under --storage: a path here (../../x, /tmp/x) would write anywhere.
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", self.name) or ".." in self.name:
            raise ParameterError(
                f"tune.name {self.name!r}: must be a plain folder name (letters, digits, _ . -)"
            )


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep file: the sweep settings and the base RL run config."""

    sweep: SweepConfig
    run: Any  # editorbot.training.ppo.RLRunConfig (ppo imports ray.rllib; kept lazy)
    source: str


def load_sweep(path: str | Path) -> Sweep:
    """Read a sweep file; unknown keys (in ``tune:`` or the run config) name the key and file.

    Raises:
        ParameterError: unknown key, wrong type, unknown sampler or search-space field.
    """
    from editorbot.training.ppo import RLRunConfig
    from editorbot.training.tune_trial import SupervisedRun

    data = load_yaml(path)
    sweep = from_dict(SweepConfig, data.pop("tune", None), source=f"{path}: tune")
    if sweep.trainable not in ("rl", "supervised"):
        raise ParameterError(f"{path}: tune: trainable {sweep.trainable!r}; use rl or supervised")
    run_cls = RLRunConfig if sweep.trainable == "rl" else SupervisedRun
    run = from_dict(run_cls, data, source=str(path))
    _check_sweep(sweep, run, str(path))
    return Sweep(sweep=sweep, run=run, source=str(path))


def _check_sweep(sweep: SweepConfig, run: Any, source: str) -> None:
    if sweep.mode not in ("max", "min"):
        raise ParameterError(f"{source}: tune: mode {sweep.mode!r}; use 'max' or 'min'")
    if sweep.scheduler.kind not in ("fifo", "asha", "pbt"):
        raise ParameterError(
            f"{source}: tune: scheduler: kind {sweep.scheduler.kind!r}; use fifo, asha or pbt"
        )
    grace = sweep.scheduler.grace_period
    if sweep.scheduler.kind == "asha" and sweep.trainable == "rl" and grace > sweep.stop_iters:
        raise ParameterError(  # ASHA would stop on an assertion (grace_period must be <= max_t)
            f"{source}: tune: scheduler: grace_period {grace} is longer than stop_iters "
            f"{sweep.stop_iters}; lower grace_period or raise stop_iters"
        )
    plain = dataclasses.asdict(run)
    for key, spec in sweep.search_space.items():
        section, _, name = key.partition(".")
        if not isinstance(plain.get(section), dict) or (
            section != "env" and name not in plain[section]
        ):
            raise ParameterError(f"{source}: tune: search_space: unknown field {key!r}")
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in SAMPLERS:
            raise ParameterError(
                f"{source}: tune: search_space: {key}: {spec!r}; give one of {', '.join(SAMPLERS)}"
            )
        if key in (
            "ppo.num_env_runners",
            "ppo.num_learners",
            "ppo.num_gpus_per_learner",
            "train.num_workers",
            "train.use_gpu",
        ):
            raise ParameterError(f"{source}: tune: search_space: {key} sets resources; fix it")


def param_space(sweep: SweepConfig) -> dict[str, Any]:
    """The search space as Tune domains, nested like the run config (``{"ppo": {"lr": ...}}``)."""
    from ray import tune

    space: dict[str, Any] = {}
    for key, spec in sweep.search_space.items():
        section, _, name = key.partition(".")
        ((sampler, args),) = spec.items()
        args = list(args)
        domain = (
            getattr(tune, sampler)(args)
            if sampler in ("choice", "grid_search")
            else (getattr(tune, sampler)(*args))
        )
        space.setdefault(section, {})[name] = domain
    return space


def resources(run: Any, env_config: dict[str, Any]) -> Any:
    """RLlib's own placement-group request for one trial of this run config."""
    from ray.rllib.algorithms.ppo import PPO

    from editorbot.training.ppo import ppo_config

    algo_cfg = ppo_config(run.ppo, env_config=env_config, module=run.module)
    return PPO.default_resource_request(algo_cfg)


def check_fits(pgf: Any, cluster: dict[str, float], source: str) -> None:
    """Fail fast when one trial asks more than the whole cluster has.

    Raises:
        ParameterError: naming what the trial needs, what the cluster has, and the fix.
    """
    need = pgf.required_resources
    short = {k: v for k, v in need.items() if v > cluster.get(k, 0.0) + 1e-9}
    if short:
        have = ", ".join(f"{k}={cluster.get(k, 0.0):g}" for k in sorted(short))
        want = ", ".join(f"{k}={v:g}" for k, v in sorted(short.items()))
        raise ParameterError(
            f"{source}: one trial needs {want} (1 CPU for the algorithm + 1 per env runner, plus "
            f"learners) but the Ray cluster has {have}; lower ppo.num_env_runners/num_learners"
        )


def wait_until_fits(pgf: Any, timeout_s: float) -> None:
    """Give a growing cluster ``timeout_s`` to offer one trial's resources.

    A cluster from ``cluster.yaml`` starts with worker nodes at ``min_workers`` (0 by default),
    so a trial rarely fits the nodes running when the sweep starts; the reservation
    (:func:`~editorbot.training.ppo.reserve_within`) shows the autoscaler the demand. A local
    Ray that cannot grow wastes only the wait (the caller then fails with :func:`check_fits`'
    message); ``ppo.placement_timeout_s`` bounds it.
    """
    import ray

    from editorbot.training.ppo import reserve_within

    cluster = ray.cluster_resources()
    if all(v <= cluster.get(k, 0.0) + 1e-9 for k, v in pgf.required_resources.items()):
        return
    reserve_within(pgf.bundles, pgf.strategy, timeout_s, what="one Tune trial")


def run_sweep(sweep: Sweep, *, data: str | Path, storage: str | Path, resume: bool = False) -> Any:
    """Run (or, with ``resume``, continue) the sweep; returns Tune's ``ResultGrid``.

    Args:
        sweep: the loaded sweep file.
        data: ``rl``: an ``editorbot bc-data`` folder (``tables/`` for the env, ``episodes/``
            for BC); ``supervised``: a training-data folder (``input/``, ``desired_output/``,
            ``truth/``).
        storage: folder or storage URI (``s3://BUCKET/tune``; see :mod:`editorbot.storage`)
            holding the experiment directory ``storage/sweep.name``, which Tune writes from
            every node.
        resume: continue an interrupted sweep, re-running errored trials from their checkpoints.

    Raises:
        ParameterError: a trial that cannot fit the cluster, or ``resume`` with nothing to resume.
    """
    import ray
    from ray import tune

    from editorbot import storage as st

    s = sweep.sweep
    root, fs = st.ray_storage(storage)
    exp_dir = f"{root}/{s.name}"
    if not ray.is_initialized():
        from editorbot.training.local_ray import init_local

        init_local()
    # Trials run in their own working folders: a relative path would move with them.
    where = storage if st.is_uri(storage) else Path(storage).resolve()
    if s.trainable == "rl":
        trainable = _rl_trainable(sweep, Path(data).resolve(), exp_dir, st.join(where, s.name))
    else:
        from editorbot.training.tune_trial import supervised_trainable

        trainable = supervised_trainable(sweep.run, Path(data), sweep.source,
                                         st.join(where, s.name))  # fmt: skip
    space = param_space(s)
    if resume:
        if not tune.Tuner.can_restore(exp_dir, storage_filesystem=fs):
            raise ParameterError(
                f"{st.join(storage, s.name)}: no sweep to resume; run without --resume first"
            )
        logger.info("resuming %s", st.join(storage, s.name))
        tuner = tune.Tuner.restore(
            exp_dir, trainable=trainable, resume_errored=True, param_space=space,
            storage_filesystem=fs,
        )  # fmt: skip
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=_tune_config(s),
            run_config=_run_config(s, root, fs),
        )
    return tuner.fit()


def _rl_trainable(sweep: Sweep, bc_dir: Path, exp_dir: str, experiment: str | Path) -> Any:
    """The RL trial (``train rl``'s run) with RLlib's resource request, checked against the
    cluster first.

    The tables are ``ray.put`` once here: trials (and their env runners and learners) run on any
    node, which need not see this machine's ``bc_dir``; each trial splits them and replays the
    experts with its own env config, as ``train rl`` does."""
    import ray
    from ray import tune

    from editorbot.envs.registration import register
    from editorbot.training.rl_train import _load_tables
    from editorbot.training.tune_trial import rl_trial

    tables, normalizer = _load_tables(bc_dir)  # one line here, not an error in every trial
    register()  # Tuner.restore needs the env registered again
    pgf = resources(sweep.run, {**sweep.run.env, "seed": sweep.run.seed})
    wait_until_fits(pgf, sweep.run.ppo.placement_timeout_s)
    check_fits(pgf, ray.cluster_resources(), sweep.source)
    return tune.with_resources(
        tune.with_parameters(
            rl_trial,
            base=sweep.run,
            data_ref=[ray.put((tables, normalizer))],
            sweep=sweep.sweep,
            marker_dir=str(exp_dir),
            experiment=str(experiment),
        ),
        pgf,
    )


def _tune_config(s: SweepConfig) -> Any:
    from ray import tune

    return tune.TuneConfig(
        metric=s.metric,
        mode=s.mode,
        num_samples=s.num_samples,
        scheduler=_scheduler(s),
        max_concurrent_trials=s.max_concurrent_trials or None,
    )


def _run_config(s: SweepConfig, storage: str, filesystem: Any = None) -> Any:
    from ray import tune

    return tune.RunConfig(
        name=s.name,
        storage_path=storage,
        storage_filesystem=filesystem,
        # Supervised trials stop themselves (train.epochs, early stopping).
        stop={"iteration": s.stop_iters} if s.trainable == "rl" else None,
        failure_config=tune.FailureConfig(max_failures=s.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        verbose=0,
    )


def _scheduler(s: SweepConfig) -> Any:
    """FIFO, ASHA or PBT on ``s.metric`` (PBT mutates the searched fields)."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    sc = s.scheduler
    if sc.kind == "asha":
        return ASHAScheduler(
            time_attr=_time_attr(s),
            max_t=s.stop_iters if s.trainable == "rl" else _MAX_EPOCHS,
            grace_period=sc.grace_period,
            reduction_factor=sc.reduction_factor,
        )
    if sc.kind == "pbt":
        return PopulationBasedTraining(
            time_attr=_time_attr(s),
            perturbation_interval=sc.perturbation_interval,
            hyperparam_mutations=param_space(s),
        )
    return FIFOScheduler()


_MAX_EPOCHS = 1000
"""[epochs] ASHA's horizon for supervised trials (they stop themselves at train.epochs)."""


def _time_attr(s: SweepConfig) -> str:
    """RL trials report ``iteration`` (kept across restores); supervised ones count reports."""
    return "iteration" if s.trainable == "rl" else "training_iteration"


def results_table(
    grid: Any, metric: str, mode: str, storage: str | Path | None = None
) -> list[dict[str, Any]]:
    """One row per trial, best first by ``metric`` (trials without it last); ``storage`` is the
    sweep's location (where a supervised trial's ``best/`` is looked for)."""
    rows = []
    for result in grid:
        m = dict(result.metrics or {})
        value = m.get(metric, math.nan)
        rows.append(
            {
                "trial": m.get("trial_id", result.path and Path(result.path).name),
                "status": "ERROR" if result.error else "OK",
                "iterations": m.get("iteration", m.get("epoch", 0)),
                "metric": value,
                "config": result.config or {},
                "checkpoint": _best_checkpoint(result, metric, mode, storage),
            }
        )
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda r: (_nan(r["metric"]), sign * (0.0 if _nan(r["metric"]) else r["metric"])))
    return rows


def _best_checkpoint(result: Any, metric: str, mode: str, storage: str | Path | None) -> str:
    """The trial's best Tune checkpoint; for supervised trials (whose Train checkpoints stay
    with Ray Train) the ``best/`` model the trial wrote into its folder in the storage."""
    from editorbot import storage as st

    best = result.get_best_checkpoint(metric, mode) if result.best_checkpoints else None
    best = best or result.checkpoint
    if best is not None:
        return str(best.path)
    if not result.path:
        return ""
    trial = Path(result.path)
    own = st.join(storage, trial.parent.name, trial.name, "best") if storage else trial / "best"
    return str(own) if st.exists(st.join(own, "editorbot_checkpoint.json")) else ""


def _nan(value: Any) -> bool:
    return not isinstance(value, int | float) or math.isnan(value)
