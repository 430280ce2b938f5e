"""Behavioural-cloning pretraining in plain PyTorch on the replayed expert steps.

RLlib's BC algorithm streams offline episodes through Ray Data: on 2 cores that cost seconds per
iteration for a few hundred steps, so a run's worth of iterations saw each expert step only a
few times and stopped far from fitting them (benchmarks/RESULTS.md, "BC alone"; editorbot no
longer has that path: it read a driver-local, pickle-packed copy of the episodes). The expert
data of one editor is small (hundreds to a few thousand steps), so here it is held in memory and
fitted for whole epochs on the same :class:`~editorbot.models.rl_module.EditorRLModule` class,
with the epoch kept that scores best on the held-out tracks' greedy type agreement (early
stopping). Behavioural cloning as supervised learning of the expert's action given the state:
Pomerleau 1991, https://doi.org/10.1162/neco.1991.3.1.88.

How to run: :func:`fit_bc` (``editorbot train rl`` calls it before PPO).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from editorbot.training.ppo import BCSettings

logger = logging.getLogger(__name__)


def fit_bc(
    module: Any,
    obs: dict[str, np.ndarray],
    actions: np.ndarray,
    settings: BCSettings,
    *,
    aux_weight: float,
    weights: np.ndarray | None = None,
    evaluate: Any = None,
    seed: int = 0,
    after_backward: Any = None,
) -> dict[str, Any]:
    """Fit ``module``'s policy to the expert (observation, action) pairs, in place.

    Args:
        module: an ``EditorRLModule`` (full, not inference-only).
        obs: key -> [shape=(N, ...)] expert observations (as :func:`load_expert_arrays`).
        actions: [shape=(N, 3)] expert (type, size, amount).
        settings: optimiser and schedule (``epochs``, ``lr``, ``train_batch_size``,
            ``weight_decay``, ``eval_every``).
        aux_weight: [loss weight] of the auxiliary (tempo, energy, phrase) losses, PPO's.
        weights: [shape=(N,)] each step's weight on its −log π (``ExpertSteps.weights``: label
            confidence over its mean); None = 1.
        evaluate: ``f(module) -> float`` (higher is better) run every ``eval_every`` epochs and
            at the end; the best-scoring weights are loaded back. None = keep the last epoch.
        seed: minibatch order.
        after_backward: ``f(module)`` called between each backward pass and optimiser step
            (several learners average their gradients there); None = nothing.

    Returns:
        ``{"loss": last epoch's mean BC loss, "best_score", "best_epoch", "history"}``.
    """
    import torch

    torch.manual_seed(seed)
    device = next(module.parameters()).device  # a GPU learner's: the expert steps go there once
    obs_t = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in obs.items()}
    act_t = torch.from_numpy(np.asarray(actions, np.int64)).to(device)
    w = np.ones(len(actions), np.float32) if weights is None else np.asarray(weights, np.float32)
    w_t = torch.from_numpy(w).to(device)
    opt = torch.optim.AdamW(module.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    best: tuple[float, int, dict[str, Any] | None] = (-np.inf, 0, None)
    history: list[dict[str, float]] = []
    start, loss = time.perf_counter(), float("nan")
    for epoch in range(1, settings.epochs + 1):
        module.train()
        loss = _epoch(module, opt, obs_t, act_t, w_t, settings.train_batch_size, aux_weight,
                      after_backward)  # fmt: skip
        if evaluate is not None and (epoch % settings.eval_every == 0 or epoch == settings.epochs):
            module.eval()
            score = float(evaluate(module))
            history.append({"epoch": epoch, "loss": loss, "score": score})
            logger.info("BC epoch %d: loss %.4f, held-out %.3f (%.0f s)", epoch, loss, score,
                        time.perf_counter() - start)  # fmt: skip
            if score > best[0]:
                best = (score, epoch, copy.deepcopy(module.state_dict()))
    if best[2] is not None:
        module.load_state_dict(best[2])
    module.eval()
    return {"loss": loss, "best_score": best[0], "best_epoch": best[1], "history": history}


def _epoch(
    module: Any,
    opt: Any,
    obs: dict[str, Any],
    actions: Any,
    weights: Any,
    batch_size: int,
    aux_weight: float,
    after_backward: Any,
) -> float:
    """One pass in random minibatches; returns the mean BC loss (weight × −log π(expert
    action))."""
    import torch
    from ray.rllib.core.columns import Columns

    from editorbot.models.rl_module import aux_losses

    n = len(actions)
    total = 0.0
    for idx in torch.randperm(n).split(batch_size):
        batch = {Columns.OBS: {k: v[idx] for k, v in obs.items()}}
        out = module.forward_train(batch)
        dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        bc = -(weights[idx] * dist.logp(actions[idx])).mean()
        loss = bc + aux_weight * sum(aux_losses(out, batch).values()) if aux_weight else bc
        opt.zero_grad()
        loss.backward()
        if after_backward is not None:
            after_backward(module)
        opt.step()
        total += bc.item() * len(idx)
    return total / n


def build_module(module_config: Any, observation_space: Any, action_space: Any) -> Any:
    """A fresh full ``EditorRLModule`` (the class PPO uses, so the weights carry over)."""
    from editorbot.training.ppo import module_spec

    spec = module_spec(module_config)
    spec = dataclasses.replace(spec, observation_space=observation_space, action_space=action_space)
    return spec.build()
