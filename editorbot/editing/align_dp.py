"""Segmental dynamic programming with jumps: which raw beat (and variant) plays at each edit frame.

The edit is explained as a sequence of *units*: one raw beat, played under one *variant* (as is,
time-stretched by a ratio, pitch-shifted, or reversed), covering a stretch of edit frames. Moving
on to the next raw beat under the same variant is free; changing the variant while continuing costs
``switch_penalty``; starting anywhere else (a cut, loop, reorder, jump back, repeat) costs
``jump_penalty``. It is DTW with jumps (Fremerey, Müller & Clausen, "Handling repeats and jumps in
score-performance synchronization", ISMIR 2010, https://ismir2010.ismir.net/proceedings/ismir2010-50.pdf)
made segmental (a semi-Markov model whose states are raw beats, so a jump always lands on a beat
boundary, which is where the edit language can jump).

Shape:
    cost: [shape=(T, V, N)] cost of starting raw beat ``n`` under variant ``v`` at edit frame ``t``
    (already summed over the frames the unit covers). dur: [shape=(V, N)] fractional frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

_CONTINUE, _SWITCH, _JUMP, _START = 0, 1, 2, 3


@dataclass(frozen=True)
class Unit:
    """One raw beat as it appears in the edit."""

    start_frame: int
    """[frames] first edit frame the unit covers."""
    end_frame: int
    """[frames] one past the last edit frame."""
    beat: int
    """[beat index] the raw beat played."""
    variant: int
    """[index] the variant (see ``Variant`` in ``align``) it is played under."""
    cost: float
    """[cost] the matching cost of the unit, summed over its frames."""


def jump_dp(
    cost: np.ndarray,
    dur: np.ndarray,
    *,
    reverse_variants: np.ndarray,
    jump_penalty: float,
    switch_penalty: float,
    jump_distance_penalty: float = 0.0,
    duration_penalty: float = 0.0,
) -> list[Unit]:
    """The cheapest sequence of units covering all ``T`` edit frames.

    Args:
        cost: [shape=(T, V, N)] unit cost by start frame, variant and raw beat.
        dur: [shape=(V, N)] unit length in edit frames (fractional; floor or ceil is used,
            whichever matches better, so rounding never drifts along a long run).
        reverse_variants: [shape=(V,)] bool, variants whose natural successor is beat ``n - 1``.
        jump_penalty: cost of starting a unit that does not continue the previous one.
        switch_penalty: cost of continuing to the next beat under another variant.
        jump_distance_penalty: extra jump cost per beat between the jump's target and the
            beat that would have come next (of two equally good explanations of repeated
            music, the nearer jump wins, as editors' cuts and loops are mostly short).
        duration_penalty: cost per frame a unit's rounded length is off its exact length. Without
            it a stretch ratio near 1 rounds to the plain beat's length on every unit (at 9
            frames a beat, ×1.1 is 8.2 frames, rounded up to 9 it drifts a frame a beat
            unpaid) and a plain run is read as a stretched one.

    Returns:
        The units in edit order.
    """
    T, V, N = cost.shape
    d_lo = np.maximum(1, np.floor(dur)).astype(np.int64)
    d_hi = np.maximum(1, np.ceil(dur)).astype(np.int64)
    R = int(d_hi.max()) + 2
    off_lo = (duration_penalty * np.abs(d_lo - dur)).astype(np.float32)
    off_hi = (duration_penalty * np.abs(d_hi - dur)).astype(np.float32)
    ring = np.full((R, V, N), np.inf, dtype=np.float32)
    ptr = np.full((T, V, N), _START, dtype=np.uint8)
    used = np.zeros((T + R, V, N), dtype=np.uint8)  # chosen duration of a unit ending there
    switch_arg = np.zeros((T, N), dtype=np.int16)
    jump_arg = np.zeros((T, N), dtype=np.int32)  # flat (variant, beat) a jump came from
    v_idx, n_idx = np.meshgrid(np.arange(V), np.arange(N), indexing="ij")
    end_cost = np.full(T + R, np.inf)
    end_arg = np.zeros(T + R, dtype=np.int64)
    for t in range(T):
        cur = ring[t % R].copy()
        ring[t % R] = np.inf
        end_cost[t], end_arg[t] = float(cur.min()), int(cur.argmin())
        start, code, switch_arg[t], jump_arg[t] = _start_costs(
            cur, t, reverse_variants, jump_penalty, switch_penalty, jump_distance_penalty
        )
        ptr[t] = code
        total = start + cost[t]
        for d, off in ((d_lo, off_lo), (d_hi, off_hi)):
            _relax(ring, used, total + off, t + d, R, v_idx, n_idx, d)
    for t in range(T, T + R):
        cur = ring[t % R]
        end_cost[t], end_arg[t] = float(cur.min()), int(cur.argmin())
    return _backtrack(ptr, used, switch_arg, jump_arg, end_cost, end_arg, cost, reverse_variants)


def _start_costs(
    cur: np.ndarray,
    t: int,
    reverse: np.ndarray,
    jump_penalty: float,
    switch_penalty: float,
    distance_penalty: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cheapest way to start each (variant, beat) at frame ``t`` given units ending at ``t``."""
    V, N = cur.shape
    switch_arg = np.zeros(N, dtype=np.int16)
    if t == 0:
        start = np.full((V, N), jump_penalty)
        start[:, 0] = 0.0
        start[reverse, :] = jump_penalty
        return start, np.full((V, N), _START, dtype=np.uint8), switch_arg, np.zeros(N, np.int32)
    cont = np.full((V, N), np.inf)
    cont[~reverse, 1:] = cur[~reverse, :-1]
    cont[reverse, :-1] = cur[reverse, 1:]
    forward = np.where(reverse[:, None], np.inf, cur)
    switch = np.full(N, np.inf)
    switch[1:] = forward[:, :-1].min(axis=0)
    switch_arg[1:] = forward[:, :-1].argmin(axis=0)
    switch = np.broadcast_to(switch + switch_penalty, (V, N))
    best_v = cur.argmin(axis=0)
    succ = np.full(N, np.inf)  # [cost] best unit ending at t whose natural successor is k
    succ[1:] = cur.min(axis=0)[:-1]
    dist, src = _l1_envelope(succ, distance_penalty)
    jump = np.broadcast_to(dist + jump_penalty, (V, N))
    src_beat = np.maximum(src - 1, 0)
    jump_arg = (best_v[src_beat] * N + src_beat).astype(np.int32)
    options = np.stack([cont, switch, jump])
    code = np.argmin(options, axis=0).astype(np.uint8)
    best = np.take_along_axis(options, code[None].astype(np.int64), axis=0)[0]
    return best, code, switch_arg, jump_arg


def _l1_envelope(f: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """min_k f[k] + lam·|j − k| for every j, and the k that attains it (two running minima).

    A 1-D distance transform (Felzenszwalb & Huttenlocher, "Distance transforms of sampled
    functions", https://cs.brown.edu/people/pfelzens/papers/dt-final.pdf).
    """
    idx = np.arange(len(f))
    fwd_val, fwd_arg = _running_min(f - lam * idx)
    bwd_val, bwd_arg = _running_min((f + lam * idx)[::-1])
    fwd, bwd = fwd_val + lam * idx, (bwd_val + 0.0)[::-1] - lam * idx
    bwd_arg = (len(f) - 1 - bwd_arg)[::-1]
    use_fwd = fwd <= bwd
    return np.where(use_fwd, fwd, bwd), np.where(use_fwd, fwd_arg, bwd_arg)


def _running_min(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prefix minima of ``a`` and where each was attained."""
    val = np.minimum.accumulate(a)
    arg = np.maximum.accumulate(np.where(a == val, np.arange(len(a)), 0))
    return val, arg


def _relax(
    ring: np.ndarray,
    used: np.ndarray,
    total: np.ndarray,
    t_end: np.ndarray,
    R: int,
    v_idx: np.ndarray,
    n_idx: np.ndarray,
    d: np.ndarray,
) -> None:
    """Lower the cost of units ending at ``t_end`` where ``total`` is cheaper."""
    slot = t_end % R
    better = total < ring[slot, v_idx, n_idx]
    ring[slot[better], v_idx[better], n_idx[better]] = total[better]
    used[t_end[better], v_idx[better], n_idx[better]] = d[better]


def _backtrack(
    ptr: np.ndarray,
    used: np.ndarray,
    switch_arg: np.ndarray,
    jump_arg: np.ndarray,
    end_cost: np.ndarray,
    end_arg: np.ndarray,
    cost: np.ndarray,
    reverse: np.ndarray,
) -> list[Unit]:
    """Walk the pointers back from the cheapest end near the last edit frame."""
    T, V, N = cost.shape
    # The edit may end up to one frame early or late: the last beat's length rounds either way.
    candidates = [t for t in (T - 1, T, T + 1) if 0 < t < len(end_cost)]
    t = min(candidates, key=lambda c: end_cost[c])
    v, n = divmod(int(end_arg[t]), N)
    units: list[Unit] = []
    while t > 0:
        d = int(used[t, v, n])
        assert d > 0, (t, v, n)
        start = t - d
        units.append(Unit(start, t, n, v, float(cost[start, v, n])))
        code = int(ptr[start, v, n])
        if code == _START:
            break
        if code == _CONTINUE:
            n = n + 1 if reverse[v] else n - 1
        elif code == _SWITCH:
            v, n = int(switch_arg[start, n]), n - 1
        else:
            v, n = divmod(int(jump_arg[start, n]), N)
        t = start
    units.reverse()
    return units
