"""PPO learner with a behavioural-cloning term and the auxiliary losses mixed in.

Total loss per module = PPO's loss (clipped surrogate, value, entropy, adaptive KL)
+ ``aux_weight`` × Σ auxiliary losses (tempo bin, energy class, phrase boundary; on the
rollout batch) + ``bc_weight`` × mean −log π(expert action | expert obs) on a random batch of
expert steps. The expert steps are loaded in :meth:`build`, so remote learners load them too.
Mixing a BC term into the policy-gradient loss follows DAPG (Rajeswaran et al. 2018,
https://arxiv.org/abs/1709.10087), here with a constant or geometrically decaying weight.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns

from editorbot.models.rl_module import aux_losses

logger = logging.getLogger(__name__)

BC_LOSS_KEY = "bc_loss"
BC_WEIGHT_KEY = "bc_weight"


class EditorPPOLearner(PPOTorchLearner):
    """``PPOTorchLearner`` + BC on expert steps + auxiliary losses (see the module docstring).

    Reads ``config.learner_config_dict``: ``bc_episodes`` (folder or None), ``bc_weight``,
    ``bc_weight_decay``, ``bc_batch_size``, ``aux_weight``.
    """

    def build(self) -> None:
        super().build()
        cfg = self.config.learner_config_dict
        self._bc_weight = float(cfg.get("bc_weight", 0.0))
        self._bc_decay = float(cfg.get("bc_weight_decay", 1.0))
        self._bc_batch = int(cfg.get("bc_batch_size", 256))
        self._aux_weight = float(cfg.get("aux_weight", 0.0))
        self._expert: tuple[dict[str, np.ndarray], np.ndarray] | None = None
        if cfg.get("bc_episodes") and self._bc_weight > 0:
            from editorbot.training.bc_data import load_expert_arrays

            self._expert = load_expert_arrays(cfg["bc_episodes"])
            logger.info("mixed BC on %d expert steps", len(self._expert[1]))
        self._rng = np.random.default_rng(int(self.config.seed or 0))

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        total: torch.Tensor = super().compute_loss_for_module(  # type: ignore[assignment]
            module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
        )
        logs: dict[str, Any] = {}
        if self._aux_weight > 0:
            aux = aux_losses(fwd_out, batch)
            total = total + self._aux_weight * sum(aux.values())
            logs.update(aux)
        if self._expert is not None and self._bc_weight > 0:
            bc = self._bc_loss(module_id)
            total = total + self._bc_weight * bc
            logs.update({BC_LOSS_KEY: bc, BC_WEIGHT_KEY: self._bc_weight})
        if logs:
            self.metrics.log_dict(logs, key=module_id, window=1)
        return total

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        self._bc_weight *= self._bc_decay

    def _bc_loss(self, module_id: str) -> torch.Tensor:
        """Mean −log π(expert action | expert observation) on a random expert batch."""
        assert self._expert is not None
        obs, actions = self._expert
        idx = self._rng.integers(len(actions), size=min(self._bc_batch, len(actions)))
        module: Any = self.module[module_id].unwrapped()
        device = next(module.parameters()).device
        batch = {Columns.OBS: {k: torch.from_numpy(v[idx]).to(device) for k, v in obs.items()}}
        out = module.forward_train(batch)
        dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        return -dist.logp(torch.from_numpy(actions[idx]).to(device)).mean()
