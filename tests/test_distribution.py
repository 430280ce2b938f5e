"""The autoregressive (type, size, amount) distribution, checked by enumerating all 500 actions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from gymnasium import spaces
from ray.rllib.utils.torch_utils import FLOAT_MIN

from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES
from editorbot.envs.spaces import action_space
from editorbot.models.distribution import (
    N_INPUTS,
    AutoregressiveEditDistribution,
    pack_logits,
)

B = 4
ALL_ACTIONS = torch.tensor(
    list(itertools.product(range(N_TYPES), range(N_SIZES), range(N_AMOUNTS)))
)


def _masks(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random masks as the env makes them: masked types may have all-zero size/amount rows."""
    type_mask = (torch.rand(B, N_TYPES, generator=gen) < 0.6).float()
    type_mask[:, 0] = 1.0  # KEEP is always valid
    size_mask = (torch.rand(B, N_TYPES, N_SIZES, generator=gen) < 0.6).float()
    size_mask[:, :, 0] = 1.0
    amount_mask = (torch.rand(B, N_TYPES, N_AMOUNTS, generator=gen) < 0.5).float()
    amount_mask[:, :, 2] = 1.0
    size_mask[:, 1] = 0.0  # type 1 masked with nothing valid under it (allowed: p(type 1) = 0)
    amount_mask[:, 1] = 0.0
    type_mask[:, 1] = 0.0
    return type_mask, size_mask, amount_mask


def _logits(seed: int, *, masked: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    t = torch.randn(B, N_TYPES, generator=gen) * 2
    s = torch.randn(B, N_TYPES, N_SIZES, generator=gen) * 2
    a = torch.randn(B, N_TYPES, N_SIZES, N_AMOUNTS, generator=gen) * 2
    if masked:
        tm, sm, am = _masks(torch.Generator().manual_seed(0))  # same masks for every seed
        log_mask = lambda m: torch.clamp(torch.log(m), min=FLOAT_MIN)  # noqa: E731
        t, s, a = t + log_mask(tm), s + log_mask(sm), a + log_mask(am)[:, :, None, :]
    return t, s, a


def _brute_force_joint(t: torch.Tensor, s: torch.Tensor, a: torch.Tensor) -> np.ndarray:
    """p(t, s, m) for every action, action by action in float64: [B, 500]."""
    pt, ps, pa = (torch.softmax(x.double(), dim=-1).numpy() for x in (t, s, a))
    joint = np.empty((B, len(ALL_ACTIONS)))
    for i, (ti, si, mi) in enumerate(ALL_ACTIONS.tolist()):
        joint[:, i] = pt[:, ti] * ps[:, ti, si] * pa[:, ti, si, mi]
    return joint


def _dist(seed: int, *, masked: bool) -> tuple[AutoregressiveEditDistribution, np.ndarray]:
    t, s, a = _logits(seed, masked=masked)
    return AutoregressiveEditDistribution.from_logits(pack_logits(t, s, a)), _brute_force_joint(
        t, s, a
    )


def _all_logp(dist: AutoregressiveEditDistribution) -> np.ndarray:
    logps = [dist.logp(action.expand(B, 3)) for action in ALL_ACTIONS]
    return torch.stack(logps, dim=-1).double().numpy()


# Tolerances: float32 log-softmax of logits of scale ~2 is accurate to ~1e-6 per term; sums over
# 500 actions accumulate to ~1e-5 at most. A wrong conditioning row is off by ~0.1 or more.
ATOL = 1e-5


@pytest.mark.parametrize("masked", [False, True])
def test_logp_matches_enumeration_and_sums_to_one(masked: bool) -> None:
    dist, joint = _dist(1, masked=masked)
    np.testing.assert_allclose(joint.sum(axis=1), 1.0, atol=1e-12)
    logp = _all_logp(dist)
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, atol=ATOL)
    valid = joint > 0
    np.testing.assert_allclose(logp[valid], np.log(joint[valid]), atol=ATOL)
    assert np.all(np.exp(logp[~valid]) == 0.0)  # masked actions have probability exactly 0
    np.testing.assert_allclose(dist.probs().reshape(B, -1).double().numpy(), joint, atol=ATOL)


@pytest.mark.parametrize("masked", [False, True])
def test_entropy_matches_enumeration(masked: bool) -> None:
    dist, joint = _dist(2, masked=masked)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = -np.where(joint > 0, joint * np.log(joint), 0.0).sum(axis=1)
    entropy = dist.entropy()
    assert entropy.shape == (B,) and bool(torch.isfinite(entropy).all())
    np.testing.assert_allclose(entropy.double().numpy(), expected, atol=ATOL)


@pytest.mark.parametrize("masked", [False, True])
def test_kl_matches_enumeration(masked: bool) -> None:
    p, joint_p = _dist(3, masked=masked)
    q, joint_q = _dist(4, masked=masked)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint_p > 0, joint_p * (np.log(joint_p) - np.log(joint_q)), 0.0)
    kl = p.kl(q)
    assert kl.shape == (B,) and bool(torch.isfinite(kl).all())
    # 1e-4: KL is a difference of two log-probability sums, so it takes twice the error of each.
    np.testing.assert_allclose(kl.double().numpy(), terms.sum(axis=1), atol=1e-4)
    np.testing.assert_allclose(p.kl(p).numpy(), 0.0, atol=ATOL)


def test_masked_actions_are_never_sampled_and_frequencies_match() -> None:
    torch.manual_seed(0)
    n = 10_000
    t, s, a = _logits(5, masked=True)
    inputs = pack_logits(t, s, a)[:1].expand(n, N_INPUTS)
    samples = AutoregressiveEditDistribution.from_logits(inputs).sample()
    assert samples.shape == (n, 3) and samples.dtype == torch.int64
    joint = _brute_force_joint(t, s, a)[0]
    flat = (samples[:, 0] * N_SIZES + samples[:, 1]) * N_AMOUNTS + samples[:, 2]
    counts = np.bincount(flat.numpy(), minlength=len(ALL_ACTIONS))
    assert counts[joint == 0].sum() == 0
    # 0.02: the std of a frequency from 10k draws is at most sqrt(0.25 / 1e4) = 0.005; 4 sigma.
    np.testing.assert_allclose(counts / n, joint, atol=0.02)


def test_deterministic_is_the_argmax_chain() -> None:
    t, s, a = _logits(6, masked=True)
    det = AutoregressiveEditDistribution.from_logits(pack_logits(t, s, a)).to_deterministic()
    actions = det.sample()
    rows = torch.arange(B)
    expected_t = t.argmax(-1)
    expected_s = s[rows, expected_t].argmax(-1)
    expected_m = a[rows, expected_t, expected_s].argmax(-1)
    assert actions.tolist() == torch.stack([expected_t, expected_s, expected_m], -1).tolist()
    assert det.logp(actions).shape == (B,)  # RLlib stores it as ACTION_LOGP, one per row


def test_gradients_are_finite_with_masks() -> None:
    t, s, a = _logits(7, masked=True)
    inputs = pack_logits(t, s, a).requires_grad_(True)
    dist = AutoregressiveEditDistribution.from_logits(inputs)
    other = AutoregressiveEditDistribution.from_logits(inputs.detach() + 0.1)
    loss = dist.entropy().sum() + dist.kl(other).sum() - dist.logp(dist.sample()).sum()
    loss.backward()
    assert inputs.grad is not None and bool(torch.isfinite(inputs.grad).all())


def test_required_input_dim() -> None:
    assert AutoregressiveEditDistribution.required_input_dim(action_space()) == 620 == N_INPUTS
    with pytest.raises(AssertionError):
        AutoregressiveEditDistribution.required_input_dim(spaces.MultiDiscrete([20, 5]))
