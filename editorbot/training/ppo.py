"""Algorithm configs of the RL agent: the fluent ``PPOConfig`` builder and its settings.

The hyperparameters live in frozen dataclasses (:class:`PPOSettings`, :class:`BCSettings`),
grouped with the env and module configs in :class:`RLRunConfig`, which a YAML file in
``tune_configs/`` maps onto one to one (unknown keys are errors that name the key and the file).
Defaults are the seed's (lr 1e-4, entropy 0.02, clip 0.2, target KL 0.02, batch 2048).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from editorbot.config import from_dict as config_from_dict
from editorbot.config import load_yaml
from editorbot.envs.registration import ENV_NAME, register
from editorbot.errors import ParameterError
from editorbot.models.rl_module import EditorRLModule, ModuleConfig

logger = logging.getLogger(__name__)

_BUILTIN_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")
"""Ray's own resource names: not valid as custom resources."""
_FIRST_PLACEMENT_CHECK_S = 5.0
"""[s] wait before logging that the cluster is short of resources (then wait the rest)."""


@dataclass(frozen=True)
class PPOSettings:
    """PPO hyperparameters and resources."""

    lr: float = 1e-4
    """[1/step] Adam learning rate."""
    entropy_coeff: float = 0.02
    """[loss weight] entropy bonus (of the whole autoregressive action)."""
    clip_param: float = 0.2
    """[ratio] PPO clip range."""
    kl_target: float = 0.02
    """[nats] target KL of the adaptive KL penalty."""
    train_batch_size: int = 2048
    """[steps] env steps per training iteration (per learner)."""
    minibatch_size: int = 256
    """[steps] SGD minibatch."""
    num_epochs: int = 4
    """[passes] SGD passes over each train batch."""
    gamma: float = 0.99
    """[discount / step] reward discount."""
    lambda_: float = 0.95
    """[GAE λ] advantage smoothing."""
    num_env_runners: int = 0
    """[actors] remote env runners (0 = sample in the driver)."""
    num_envs_per_env_runner: int = 8
    """[envs] vectorised envs per runner (RLlib costs ~2.5 ms per step; vectorise)."""
    num_learners: int = 0
    """[actors] remote learners (0 = learn in the driver)."""
    num_gpus_per_learner: float = 0.0
    """[GPUs] per learner (the learner then trains in float32 on its GPU)."""
    custom_resources_per_env_runner: dict[str, float] = field(default_factory=dict)
    """[resource units] Ray custom resources each remote env runner asks for, on top of its CPU:
    ``{"rollout": 1}`` pins runners to nodes that advertise ``rollout`` (``cluster.yaml``'s CPU
    rollout workers). Empty = any node with a free CPU; unused when ``num_env_runners`` is 0."""
    custom_resources_per_learner: dict[str, float] = field(default_factory=dict)
    """[resource units] Ray custom resources each remote learner asks for: ``{"learner": 1}``
    pins learners to ``cluster.yaml``'s GPU learner nodes. Unused when ``num_learners`` is 0
    (the learner then runs in the driver, wherever the driver runs)."""
    placement_timeout_s: float = 600.0
    """[s] how long to wait for the Ray cluster to offer every remote env runner's and learner's
    resources (an autoscaler may be starting nodes) before failing with what is missing; RLlib
    itself would wait forever (:func:`wait_for_resources`)."""
    bc_weight: float = 0.3
    """[loss weight] of −log π(expert action) on expert batches mixed into PPO (0 = off)."""
    bc_weight_decay: float = 1.0
    """[factor / update] multiplies the BC weight after each learner update (1 = constant)."""
    bc_batch_size: int = 256
    """[steps] expert samples per learner update."""
    aux_weight: float = 0.1
    """[loss weight] of the auxiliary (tempo, energy, phrase) losses."""
    anchor_weight: float = 0.0
    """[loss weight] of KL(starting policy ‖ policy) on the rollout observations (0 = off)."""
    vf_warmup_iters: int = 0
    """[iterations] at the start during which only the value head learns (0 = off)."""

    def __post_init__(self) -> None:
        for name in ("custom_resources_per_env_runner", "custom_resources_per_learner"):
            _check_custom_resources(name, getattr(self, name))
        if self.placement_timeout_s <= 0:
            raise ParameterError(
                f"placement_timeout_s {self.placement_timeout_s!r}: give a positive number of s"
            )


def _check_custom_resources(name: str, value: object) -> None:
    """``value`` must map resource names (not CPU/GPU, which have their own settings) to
    non-negative amounts; raises :class:`ParameterError` naming ``name`` otherwise."""
    if not isinstance(value, dict):
        raise ParameterError(f"{name}: expected a mapping like {{rollout: 1}}, got {value!r}")
    for key, amount in value.items():
        if not isinstance(key, str) or key in _BUILTIN_RESOURCES:
            raise ParameterError(
                f"{name}: {key!r} is not a custom resource; set CPUs and GPUs with "
                "num_gpus_per_learner / num_env_runners"
            )
        if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
            raise ParameterError(f"{name}: {key}: {amount!r}; give a non-negative number")


@dataclass(frozen=True)
class BCSettings:
    """Behavioural-cloning pretraining before PPO: in-memory BC
    (:mod:`editorbot.training.bc_fit`) on the learner, the epoch with the best held-out type
    agreement kept. ``epochs`` 0: PPO starts from random weights.
    """

    epochs: int = 40
    """[passes] BC passes over the expert steps (0 = no BC pretraining)."""
    lr: float = 1e-3
    """[1/step] Adam learning rate."""
    train_batch_size: int = 64
    """[steps] expert steps per BC update."""
    weight_decay: float = 0.0
    """[1/step] AdamW decoupled weight decay (in-memory BC)."""
    eval_every: int = 5
    """[epochs] between held-out evaluations of in-memory BC."""


@dataclass(frozen=True)
class RLRunConfig:
    """One RL run: environment, module, BC pretraining and PPO (``tune_configs/*.yaml``)."""

    env: dict[str, Any] = field(default_factory=dict)
    """:class:`~editorbot.envs.editing_env.EnvConfig` fields (window, reward weights ...)."""
    module: ModuleConfig = field(default_factory=ModuleConfig.compact)
    """Sizes of the RLModule (default :meth:`ModuleConfig.compact`; keys given in YAML replace
    the seed's defaults of :class:`ModuleConfig`, e.g. ``hidden: 512`` for the seed's size)."""
    ppo: PPOSettings = field(default_factory=PPOSettings)
    """PPO settings."""
    bc: BCSettings = field(default_factory=BCSettings)
    """BC pretraining settings."""
    validation_fraction: float = 0.2
    """[fraction] tracks held out for choosing the BC epoch and ``best/`` (at least one when
    there are 2+)."""
    test_fraction: float = 0.2
    """[fraction] further tracks held out and only reported (never choose anything), so the
    reported agreement is not the one that picked the checkpoint; taken while a track trains."""
    hide_target_ratio: bool = False
    """[flag] every training episode shows the training tracks' mean edit/raw ratio instead of
    the track's own (``EnvConfig.shown_target_ratio``). ``edit`` always shows that mean (a
    ``--target-duration`` constrains the decoding instead), so a policy that learned to cut to
    each track's known target cuts wrongly there. Validation always runs as ``edit`` does."""
    label_confidence: bool = False
    """[flag] weight each expert step by its label's confidence, in BC (pretraining and the
    mixed loss) and in the agreement reward; False (the default) takes every label as certain.
    True decisions (``truth/``) have confidence 1, so only inferred labels are affected. Off
    until the labels' confidence is calibrated: on the demo's training labels the alignment's
    decisions under 0.5 were right 94 % of the time and nearly all effects, and weighting by it
    took the demo's held-out RL agreement from 0.882 to 0.654 (benchmarks/RESULTS.md)."""
    seed: int = 0
    """[seed] env track order and held-out split."""


def load_run_config(path: str | Path | None) -> RLRunConfig:
    """Read an :class:`RLRunConfig` from YAML (defaults when ``path`` is None).

    A ``tune:`` section (sweep settings, :mod:`editorbot.training.tune_run`) is ignored here, so
    one file serves both ``editorbot train rl`` and ``editorbot tune``.
    """
    if path is None:
        return RLRunConfig()
    data = load_yaml(path)
    data.pop("tune", None)
    return config_from_dict(RLRunConfig, data, source=str(path))


def module_spec(module: ModuleConfig) -> RLModuleSpec:
    """The RLModule spec of both algorithms (BC and PPO must share the class to share weights)."""
    return RLModuleSpec(module_class=EditorRLModule, model_config=dataclasses.asdict(module))


def ppo_config(
    settings: PPOSettings,
    *,
    env_config: dict[str, Any],
    module: ModuleConfig,
    expert_episodes: str | Path | None = None,
    expert: Any = None,
    seed: int | None = None,
) -> PPOConfig:
    """PPO on the registered editing env, with the BC + auxiliary learner.

    Args:
        settings: hyperparameters and resources.
        env_config: the env's config dict; ``tables`` is a Ray ``ObjectRef`` (``ray.put`` once
            by the driver: every runner reads the same copy, on any node) or a folder path
            (only where every node mounts it).
        module: RLModule sizes.
        expert: a Ray ``ObjectRef`` to the expert steps (``ExpertSteps``) of the mixed BC loss
            (:func:`~editorbot.training.bc_data.load_expert_arrays`); the learner reads it from
            the object store, wherever it runs.
        expert_episodes: instead of ``expert``, a folder of expert episodes every learner's node
            sees (None for both = no BC loss).
        seed: RLlib's global seed.
    """
    from editorbot.training.learner import EditorPPOLearner

    register()
    s = settings
    learner_cfg = {
        "bc_expert": expert if s.bc_weight > 0 else None,
        "bc_episodes": str(expert_episodes) if expert_episodes and s.bc_weight > 0 else None,
        "bc_weight": s.bc_weight,
        "bc_weight_decay": s.bc_weight_decay,
        "bc_batch_size": s.bc_batch_size,
        "aux_weight": s.aux_weight,
        "anchor_weight": s.anchor_weight,
        "vf_warmup_iters": s.vf_warmup_iters,
    }
    return (
        PPOConfig()
        # The actions are MultiDiscrete indices: nothing to unsquash or clip, and the connector
        # that would do it deep-copies every step's actions (3 % of sampling).
        .environment(ENV_NAME, env_config=env_config, normalize_actions=False, clip_actions=False)
        .framework("torch")
        .env_runners(
            num_env_runners=s.num_env_runners,
            num_envs_per_env_runner=s.num_envs_per_env_runner,
            rollout_fragment_length="auto",
            custom_resources_per_env_runner=dict(s.custom_resources_per_env_runner),
        )
        .learners(
            num_learners=s.num_learners,
            num_gpus_per_learner=s.num_gpus_per_learner,
            custom_resources_per_learner=dict(s.custom_resources_per_learner),
            learner_class=EditorPPOLearner,
            learner_config_dict=learner_cfg,
        )
        .training(
            lr=s.lr,
            entropy_coeff=s.entropy_coeff,
            clip_param=s.clip_param,
            kl_target=s.kl_target,
            train_batch_size_per_learner=s.train_batch_size,
            minibatch_size=s.minibatch_size,
            num_epochs=s.num_epochs,
            gamma=s.gamma,
            lambda_=s.lambda_,
        )
        .rl_module(rl_module_spec=module_spec(module))
        # A lost env runner (killed process, lost node) is recreated and sampling goes on.
        .fault_tolerance(restart_failed_env_runners=True)
        .debugging(seed=seed)
    )


def wait_for_resources(config: PPOConfig, timeout_s: float) -> None:
    """Block until the Ray cluster can hold ``config``'s remote env runners and learners.

    RLlib creates its actors and then waits for them without a timeout: a resource no node
    offers (a custom resource nobody advertises, more CPUs than the cluster has) hangs
    ``build_algo()`` forever. This reserves the same bundles RLlib would ask for (one per
    runner and per learner, ``PPO.default_resource_request`` without the driver's) as a
    placement group, which also tells an autoscaler to start matching nodes, then releases it.
    Call it right before ``build_algo()`` on a connected Ray; nothing to do without remote actors.

    Args:
        config: the algorithm config (:func:`ppo_config`).
        timeout_s: [s] how long to wait (``PPOSettings.placement_timeout_s``).

    Raises:
        ParameterError: the resources did not become available in time; names what one run
            needs, what the cluster offers, and the settings to change.
    """
    import ray
    from ray.rllib.algorithms.ppo import PPO

    request = PPO.default_resource_request(config)  # a PlacementGroupFactory (new API stack)
    requested = getattr(request, "bundles", [])[1:]  # bundle 0 is the driver's own
    bundles = [b for b in ({k: v for k, v in b.items() if v} for b in requested) if b]
    if not bundles:
        return
    if reserve_within(bundles, "PACK", timeout_s, what="env runners and learners"):
        return
    need = _total(bundles)
    have = ray.cluster_resources()
    short = {k: v for k, v in need.items() if v > have.get(k, 0.0)}
    offered = _format({k: have.get(k, 0.0) for k in (short or need)})
    reason = f"the cluster offers only {offered}" if short else f"{offered} exist but are busy"
    raise ParameterError(
        f"env runners and learners need {_format(need)} in all, and after {timeout_s:g} s "
        f"{reason}; start nodes that offer them or lower ppo.num_env_runners / "
        "ppo.num_learners / ppo.custom_resources_per_env_runner / "
        "ppo.custom_resources_per_learner"
    )


def reserve_within(
    bundles: list[dict[str, float]], strategy: str, timeout_s: float, *, what: str
) -> bool:
    """Whether the Ray cluster can place ``bundles`` within ``timeout_s``.

    The bundles are reserved as a placement group (which also shows an autoscaler the demand,
    so it starts matching nodes) and released again at once. After a first short check it logs
    one warning naming ``what`` waits, so a long wait for new nodes is visible.
    """
    from ray.util.placement_group import placement_group, remove_placement_group

    pg = placement_group(bundles, strategy=strategy)
    try:
        ready = bool(pg.wait(timeout_seconds=min(_FIRST_PLACEMENT_CHECK_S, timeout_s)))
        if not ready:
            logger.warning(
                "waiting up to %.0f s for the Ray cluster to offer %s (%s; an autoscaler may be"
                " starting nodes)",
                timeout_s,
                _format(_total(bundles)),
                what,
            )
            ready = bool(pg.wait(timeout_seconds=max(timeout_s - _FIRST_PLACEMENT_CHECK_S, 0.0)))
    finally:
        remove_placement_group(pg)
    return ready


def _total(bundles: list[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for bundle in bundles:
        for key, amount in bundle.items():
            total[key] = total.get(key, 0.0) + amount
    return total


def _format(resources: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(resources.items()))
