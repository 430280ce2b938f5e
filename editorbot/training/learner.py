"""PPO learner with a behavioural-cloning term, a value warm-up and the auxiliary losses mixed in.

Total loss per module = PPO's loss (clipped surrogate, value, entropy, adaptive KL) +
``aux_weight`` × Σ auxiliary losses (tempo bin, energy class, phrase boundary; on the rollout
batch) + ``bc_weight`` × mean w · −log π(expert action | expert obs) on a random batch of expert
steps (w: the step's label confidence over the mean) + ``anchor_weight`` × mean KL(π_start ‖ π) on
the rollout observations, where π_start is the policy PPO started from (the BC policy). The expert
steps are loaded in :meth:`build`, so remote learners load them too. Mixing a BC term into the
policy-gradient loss follows DAPG (Rajeswaran et al. 2018, https://arxiv.org/abs/1709.10087), here
with a constant or geometrically decaying weight; the KL anchor to the starting policy is the
behaviour-regularised fine-tuning of e.g. Jaques et al. 2019 (https://arxiv.org/abs/1907.00456).

**Value warm-up.** PPO starting from a BC policy starts with a value head that BC never
trained: its first advantages are noise, and with a shared encoder its large first value errors
flow into the features the policy relies on. For the first ``vf_warmup_iters`` training
iterations (learner updates: one per train batch) only the value head learns, on the rollout
returns of the BC policy with the encoder's output detached; the policy, the encoder and the BC
terms wait.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

from editorbot.models.rl_module import aux_losses
from editorbot.training.bc_data import ExpertSteps

logger = logging.getLogger(__name__)

BC_LOSS_KEY = "bc_loss"
BC_WEIGHT_KEY = "bc_weight"
ANCHOR_KL_KEY = "anchor_kl"
WARMUP_VF_KEY = "warmup_vf_loss"


class EditorPPOLearner(PPOTorchLearner):
    """``PPOTorchLearner`` + BC on expert steps + auxiliary losses (see the module docstring).

    Reads ``config.learner_config_dict``: ``bc_expert`` (a Ray ``ObjectRef`` to the
    :class:`~editorbot.training.bc_data.ExpertSteps`) or ``bc_episodes`` (a folder this node
    sees), ``bc_weight``, ``bc_weight_decay``, ``bc_batch_size``, ``aux_weight``,
    ``anchor_weight``, ``vf_warmup_iters``.
    """

    def build(self) -> None:
        super().build()
        cfg = self.config.learner_config_dict
        self._bc_weight = float(cfg.get("bc_weight", 0.0))
        self._bc_decay = float(cfg.get("bc_weight_decay", 1.0))
        self._bc_batch = int(cfg.get("bc_batch_size", 256))
        self._aux_weight = float(cfg.get("aux_weight", 0.0))
        self._anchor_weight = float(cfg.get("anchor_weight", 0.0))
        self._warmup_left = int(cfg.get("vf_warmup_iters", 0))
        self._anchor: dict[str, Any] = {}  # module id -> frozen copy of the starting policy
        self._expert: ExpertSteps | None = None
        if cfg.get("bc_expert") is not None and self._bc_weight > 0:
            import ray

            # Put once by the driver: the learner may be on a node that does not see its disk.
            self._expert = ray.get(cfg["bc_expert"])
            logger.info("mixed BC on %d expert steps", len(self._expert))
        elif cfg.get("bc_episodes") and self._bc_weight > 0:
            from editorbot.training.bc_data import load_expert_arrays

            self._expert = load_expert_arrays(cfg["bc_episodes"])
            logger.info("mixed BC on %d expert steps", len(self._expert))
        self._rng = expert_rng(int(self.config.seed or 0), _learner_rank())

    def _make_batch_if_necessary(self, training_data: Any) -> Any:
        """RLlib's, without autograd: the learner connector's only network pass is GAE's value
        estimate, a constant target of the loss (RLlib runs it with grad enabled, recording a
        graph over the whole train batch that nothing backpropagates through)."""
        with torch.no_grad():
            return super()._make_batch_if_necessary(training_data)

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        if self._anchor_weight > 0 and module_id not in self._anchor:
            self._anchor[module_id] = frozen_copy(self.module[module_id].unwrapped())
        if self._warmup_left > 0:
            return self._warmup_loss(module_id, config, batch, fwd_out)
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
        if module_id in self._anchor:
            kl = anchor_kl(self._anchor[module_id], batch, fwd_out)
            total = total + self._anchor_weight * kl
            logs[ANCHOR_KL_KEY] = kl
        if logs:
            self.metrics.log_dict(logs, key=module_id, window=1)
        return total

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        if self._warmup_left > 0:
            self._warmup_left -= 1
        else:
            self._bc_weight *= self._bc_decay

    def _warmup_loss(
        self, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """The clipped value loss alone, on the encoder's output detached (module docstring)."""
        module: Any = self.module[module_id].unwrapped()
        emb = fwd_out.get(Columns.EMBEDDINGS)
        values = module.compute_values(batch, embeddings=None if emb is None else emb.detach())
        err = torch.pow(values - batch[Postprocessing.VALUE_TARGETS], 2.0)
        loss = _masked_mean(torch.clamp(err, 0, config.vf_clip_param), batch)
        self.metrics.log_dict({WARMUP_VF_KEY: loss}, key=module_id, window=1)
        return config.vf_loss_coeff * loss

    def _bc_loss(self, module_id: str) -> torch.Tensor:
        """Mean of weight × −log π(expert action | expert observation) on a random expert batch
        (weight: the step's label confidence over the mean, :class:`ExpertSteps`)."""
        assert self._expert is not None
        n = len(self._expert)
        steps = self._expert.take(self._rng.integers(n, size=min(self._bc_batch, n)))
        module: Any = self.module[module_id].unwrapped()
        device = next(module.parameters()).device
        obs = {k: torch.from_numpy(v).to(device) for k, v in steps.obs.items()}
        out = module.forward_train({Columns.OBS: obs})
        dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        logp = dist.logp(torch.from_numpy(steps.actions).to(device))
        return -(torch.from_numpy(steps.weights).to(device) * logp).mean()


def _masked_mean(x: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
    """Mean over the rows PPO's loss counts (``LOSS_MASK``: not the padded bootstrap steps)."""
    mask = batch.get(Columns.LOSS_MASK)
    return x.mean() if mask is None else x[mask].sum() / mask.sum().clamp(min=1)


def anchor_kl(anchor: Any, batch: dict[str, Any], fwd_out: dict[str, Any]) -> torch.Tensor:
    """Mean KL(π_start ‖ π) over the rollout observations, π_start = ``anchor``
    (a :func:`frozen_copy` of the policy PPO started from), π = ``fwd_out``'s."""
    dist_cls = anchor.get_train_action_dist_cls()
    with torch.no_grad():
        start = dist_cls.from_logits(anchor.forward_train(batch)[Columns.ACTION_DIST_INPUTS])
    now = dist_cls.from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
    return _masked_mean(start.kl(now), batch)


def expert_rng(seed: int, rank: int) -> np.random.Generator:
    """The generator a learner draws its BC batches from: the run's seed for learner 0 (one
    learner samples as it always did), a stream of its own for each further learner, so that
    several learners do not all clone the same expert batch."""
    return np.random.default_rng(seed if rank == 0 else [seed, rank])


def _learner_rank() -> int:
    """[index] this learner's rank among the run's learners (0 without distributed training)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def frozen_copy(module: Any) -> Any:
    """A deep copy of ``module`` in eval mode with no gradients (the policy PPO started from)."""
    import copy

    anchor = copy.deepcopy(module)
    anchor.eval()
    for p in anchor.parameters():
        p.requires_grad_(False)
    return anchor
