"""The autoregressive action distribution over (type, size, amount), as an RLlib Distribution.

p(t, s, m) = p(t) · p(s | t) · p(m | t, s). The RLModule computes the conditioned heads for every
type and every (type, size) in one batched call, so the inputs carry all rows; sampling picks the
type, then gathers that type's size row, then the (type, size) amount row. Log-probability,
entropy and KL are exact (chain rule of entropy / KL for a factored joint; Cover & Thomas,
"Elements of Information Theory", §2.5, https://doi.org/10.1002/047174882X):

    H = H(T) + Σ_t p(t) [H(S | t) + Σ_s p(s | t) H(M | t, s)]
    KL(p‖q) = KL(p_T‖q_T) + Σ_t p(t) [KL(p_S|t‖q_S|t) + Σ_s p(s | t) KL(p_M|t,s‖q_M|t,s)]

Masked logits arrive already clamped to ``FLOAT_MIN`` (never ``-inf``), so masked actions have
probability exactly 0 and ``0 · log p`` stays 0 instead of NaN.
"""

from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.core.distribution.distribution import Distribution
from ray.rllib.core.distribution.torch.torch_distribution import TorchDeterministic
from ray.rllib.utils.typing import TensorType

from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES
from editorbot.models.policy_net import greedy_chain, sample_chain, select_rows

logger = logging.getLogger(__name__)

N_TYPE_LOGITS = N_TYPES
N_SIZE_LOGITS = N_TYPES * N_SIZES
N_AMOUNT_LOGITS = N_TYPES * N_SIZES * N_AMOUNTS
N_INPUTS = N_TYPE_LOGITS + N_SIZE_LOGITS + N_AMOUNT_LOGITS
"""620 = 20 type logits ++ 20×5 size logits ++ 20×5×5 amount logits."""


def pack_logits(
    type_logits: torch.Tensor, size_logits: torch.Tensor, amount_logits: torch.Tensor
) -> torch.Tensor:
    """Flatten the three heads into the distribution's input vector.

    Shape:
        type_logits: [B, 20]; size_logits: [B, 20, 5]; amount_logits: [B, 20, 5, 5].
        Returns: [B, 620].
    """
    B = type_logits.shape[0]
    return torch.cat(
        [type_logits, size_logits.reshape(B, -1), amount_logits.reshape(B, -1)], dim=-1
    )


def unpack_logits(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_logits` (any leading batch shape ``...``)."""
    lead = inputs.shape[:-1]
    t, s, a = torch.split(inputs, [N_TYPE_LOGITS, N_SIZE_LOGITS, N_AMOUNT_LOGITS], dim=-1)
    return t, s.reshape(*lead, N_TYPES, N_SIZES), a.reshape(*lead, N_TYPES, N_SIZES, N_AMOUNTS)


def _categorical_entropy(logp: torch.Tensor) -> torch.Tensor:
    return -(logp.exp() * logp).sum(dim=-1)


def _categorical_kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    return (logp.exp() * (logp - logq)).sum(dim=-1)


class AutoregressiveEditDistribution(Distribution):
    """Exact autoregressive categorical over (type, size, amount).

    Shape:
        inputs: [B, 620] (see :func:`pack_logits`); actions: [B, 3] int64; logp/entropy/kl: [B].
    """

    def __init__(self, inputs: torch.Tensor) -> None:
        super().__init__()
        self.inputs = inputs
        type_logits, size_logits, amount_logits = unpack_logits(inputs)
        self.type_logp = torch.log_softmax(type_logits, dim=-1)
        self.size_logp = torch.log_softmax(size_logits, dim=-1)
        self.amount_logp = torch.log_softmax(amount_logits, dim=-1)

    @classmethod
    def from_logits(cls, logits: TensorType, **kwargs: Any) -> AutoregressiveEditDistribution:
        return cls(torch.as_tensor(logits))

    @staticmethod
    def required_input_dim(space: gym.Space, **kwargs: Any) -> int:
        expected = [N_TYPES, N_SIZES, N_AMOUNTS]
        assert isinstance(space, gym.spaces.MultiDiscrete), space
        assert list(space.nvec) == expected, f"{space} is not MultiDiscrete({expected})"
        return N_INPUTS

    def sample(self, *, sample_shape: tuple[int, ...] | None = None, **kwargs: Any) -> torch.Tensor:
        """Draw (type, size, amount) in order, each conditioned on the ones before."""
        if sample_shape:
            raise NotImplementedError("AutoregressiveEditDistribution samples one action per row")
        return sample_chain(self.type_logp, self.size_logp, self.amount_logp)

    def rsample(self, *, sample_shape: tuple[int, ...] | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError("a discrete action has no reparameterised sample")

    def logp(self, value: TensorType, **kwargs: Any) -> torch.Tensor:
        """log p(t) + log p(s | t) + log p(m | t, s) of the given actions [B, 3]."""
        t, s, m = torch.as_tensor(value).long().unbind(dim=-1)
        lt = self.type_logp.gather(-1, t[..., None]).squeeze(-1)
        ls = select_rows(self.size_logp, t).gather(-1, s[..., None]).squeeze(-1)
        amount_row = select_rows(select_rows(self.amount_logp, t), s)
        lm = amount_row.gather(-1, m[..., None]).squeeze(-1)
        return lt + ls + lm

    def entropy(self, **kwargs: Any) -> torch.Tensor:
        h_amount = _categorical_entropy(self.amount_logp)  # [B, 20, 5]
        h_size = _categorical_entropy(self.size_logp)  # [B, 20]
        h_size_and_amount = h_size + (self.size_logp.exp() * h_amount).sum(dim=-1)
        return _categorical_entropy(self.type_logp) + (
            self.type_logp.exp() * h_size_and_amount
        ).sum(dim=-1)

    def kl(self, other: Distribution, **kwargs: Any) -> torch.Tensor:
        assert isinstance(other, AutoregressiveEditDistribution), type(other)
        kl_amount = _categorical_kl(self.amount_logp, other.amount_logp)  # [B, 20, 5]
        kl_size = _categorical_kl(self.size_logp, other.size_logp)  # [B, 20]
        kl_size_and_amount = kl_size + (self.size_logp.exp() * kl_amount).sum(dim=-1)
        return _categorical_kl(self.type_logp, other.type_logp) + (
            self.type_logp.exp() * kl_size_and_amount
        ).sum(dim=-1)

    def probs(self) -> torch.Tensor:
        """The full joint p(t, s, m), for tests and analysis.

        Shape:
            Returns: [B, 20, 5, 5].
        """
        joint = self.type_logp[..., :, None, None] + self.size_logp[..., None] + self.amount_logp
        return joint.exp()

    def to_deterministic(self) -> DeterministicEditAction:
        """The greedy chain: argmax type, then its argmax size, then the argmax amount."""
        return DeterministicEditAction(
            loc=greedy_chain(self.type_logp, self.size_logp, self.amount_logp)
        )


class DeterministicEditAction(TorchDeterministic):
    """A fixed (type, size, amount) per row; ``logp`` is 0 per action (shape [B], not [B, 3])."""

    def logp(self, value: TensorType, **kwargs: Any) -> torch.Tensor:
        return torch.zeros(self.loc.shape[:-1], dtype=torch.float32, device=self.loc.device)
