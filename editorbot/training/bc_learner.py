"""BC pretraining inside the PPO algorithm's learners, on their devices, before PPO starts.

:func:`pretrain_on_learners` runs :func:`~editorbot.training.bc_fit.fit_bc` in every learner of
an algorithm (``algo.learner_group.foreach_learner``): the local learner (``num_learners`` 0,
in the driver), or each remote learner on its node and its GPU when it has one. So a cluster's
GPU learner does the BC epochs, not the driver on the head.

Each learner starts from the same fresh weights (``torch.manual_seed(seed)`` then a new module:
the initialisation of a driver-side fit with the same seed), reads the expert arrays from the
object store (``ray.get`` of the driver's ``ray.put``) and keeps its own shard of their rows
(:func:`shard_rows`: one learner keeps them all, in order). With several learners the gradients
are averaged across them after every backward pass (one ``all_reduce`` of the flattened
gradients, as DDP does), so they stay identical while each sees different rows; each chooses the
epoch on the same validation tracks with the same greedy policy, so all keep the same epoch.
Learner 0 returns the result and the weights; the driver loads them into the env runners.

How to run: :func:`pretrain_on_learners` (``rl_train.run_rl`` calls it after building PPO).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LearnerBC:
    """What BC did in one learner."""

    rank: int
    """[index] the learner's rank (0 = the one whose weights are returned)."""
    world: int
    """[learners] how many learners trained together."""
    rows: int
    """[steps] expert steps this learner fitted."""
    rows_digest: str
    """SHA-256 (16 hex) of the expert row indices it fitted (tests: learners differ)."""
    device: str
    """The learner's torch device (``cpu``, ``cuda:0``)."""
    fit: dict[str, Any]
    """:func:`~editorbot.training.bc_fit.fit_bc`'s result (loss, best score and epoch)."""
    state: dict[str, np.ndarray] | None
    """The module's weights after BC (learner 0 only; None for the others)."""


def pretrain_on_learners(
    algo: Any,
    cfg: Any,
    *,
    expert: Any,
    val_tables: Any,
    env_config: dict[str, Any],
    target_ratio: float,
) -> list[LearnerBC]:
    """BC (``cfg.bc``) in every learner of ``algo``, then the env runners get the weights.

    Args:
        algo: a built PPO algorithm with :class:`~editorbot.training.learner.EditorPPOLearner`.
        cfg: the run config (``bc``, ``module``, ``ppo.aux_weight``, ``seed``).
        expert: a Ray ``ObjectRef`` to the :class:`~editorbot.training.bc_data.ExpertSteps`.
        val_tables: a Ray ``ObjectRef`` to the validation tables (choose the epoch).
        env_config: the run's env config (validation episodes run with it).
        target_ratio: [ratio] the edit/raw ratio every validation track shows (as ``edit``).

    Returns:
        One :class:`LearnerBC` per learner, rank 0 first.
    """
    run = functools.partial(
        _bc_in_learner, settings=cfg.bc, module_config=cfg.module,
        aux_weight=cfg.ppo.aux_weight, seed=cfg.seed, expert=expert, val_tables=val_tables,
        env_config=env_config, target_ratio=target_ratio,
    )  # fmt: skip
    results = sorted(learner_values(algo.learner_group.foreach_learner(run)), key=lambda r: r.rank)
    # Learners hold identical weights now; the env runners sample with them from here on.
    algo.env_runner_group.sync_weights(
        from_worker_or_learner_group=algo.learner_group, inference_only=True
    )
    logger.info(
        "BC on %d learner(s) (%s): %s expert steps, best validation type agreement %.3f at "
        "epoch %d", len(results), results[0].device, "+".join(str(r.rows) for r in results),
        results[0].fit["best_score"], results[0].fit["best_epoch"],
    )  # fmt: skip
    return results


def learner_values(calls: Any) -> list[Any]:
    """The values of a ``foreach_learner`` call, one per learner; a learner's error is raised."""
    values = []
    for call in calls:
        if not call.ok:
            raise call.get()
        values.append(call.get())
    return values


def shard_rows(n: int, rank: int, world: int, seed: int) -> np.ndarray:
    """[shape=(n // world,)] the expert row indices learner ``rank`` of ``world`` fits.

    One learner: every row, in order. Several: a seeded permutation dealt out in turn, every
    shard the same size (the remainder is left out), so all learners take the same number of
    optimiser steps per epoch: their gradient averages pair up step by step.
    """
    if world == 1:
        return np.arange(n)
    order = np.random.default_rng([seed, world]).permutation(n)
    return np.sort(order[rank::world][: n // world])


def _bc_in_learner(
    learner: Any,
    *,
    settings: Any,
    module_config: Any,
    aux_weight: float,
    seed: int,
    expert: Any,
    val_tables: Any,
    env_config: dict[str, Any],
    target_ratio: float,
) -> LearnerBC:
    """Runs in the learner's process: fresh weights, BC on this rank's shard (see module)."""
    import ray
    import torch
    from ray.rllib.core import DEFAULT_MODULE_ID

    from editorbot.training.bc_data import ExpertSteps
    from editorbot.training.bc_fit import build_module, fit_bc

    module = learner.module[DEFAULT_MODULE_ID].unwrapped()
    device = next(module.parameters()).device
    rank, world = _rank_and_world()
    torch.manual_seed(seed)  # the initial weights: same seed, same BC start, on every rank
    fresh = build_module(module_config, module.observation_space, module.action_space)
    module.load_state_dict(fresh.state_dict())
    steps = expert if isinstance(expert, ExpertSteps) else ray.get(expert)
    idx = shard_rows(len(steps), rank, world, seed)
    shard = steps.take(idx)
    tables = val_tables if isinstance(val_tables, list) else ray.get(val_tables)
    shown = [dataclasses.replace(t, target_ratio=target_ratio) for t in tables]

    def held_out(m: Any) -> float:
        from editorbot.inference.rl import validation_metrics

        # Greedy episodes step one observation at a time: on the CPU, as `edit` runs them.
        on_cpu = m if device.type == "cpu" else copy.deepcopy(m).cpu()
        return float(validation_metrics(on_cpu, shown, env_config)["type_agreement"])

    fit = fit_bc(
        module, shard.obs, shard.actions, settings, weights=shard.weights,
        aux_weight=aux_weight, seed=seed, evaluate=held_out,
        after_backward=_average_gradients if world > 1 else None,
    )  # fmt: skip
    state = None
    if rank == 0:
        state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    digest = hashlib.sha256(np.ascontiguousarray(idx, np.int64).tobytes()).hexdigest()[:16]
    return LearnerBC(rank, world, len(idx), digest, str(device), fit, state)


def weights_digest(learner: Any) -> str:
    """SHA-256 of a learner's module weights (run in the learner: do learners agree?)."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    state = learner.module[DEFAULT_MODULE_ID].unwrapped().state_dict()
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(state[key].detach().cpu().numpy().tobytes())
    return h.hexdigest()


def _rank_and_world() -> tuple[int, int]:
    """(rank, number of learners) of this learner's torch process group; (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _average_gradients(module: Any) -> None:
    """Average every parameter's gradient across the learners (one flattened ``all_reduce``;
    a parameter without a gradient, e.g. the value head under BC, counts as zero on all)."""
    import torch
    import torch.distributed as dist

    params = [p for p in module.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        size = p.numel()
        if p.grad is not None:
            p.grad.copy_(flat[offset : offset + size].view_as(p))
        offset += size
