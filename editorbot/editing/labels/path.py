"""The edit as one path through the raw track: a dynamic program with jump costs, frame by frame.

Every edit frame is explained either by a raw frame (the path moves on by one raw frame per edit
frame, or holds or skips one at a small price, which follows a time-stretch and the frame phase
of two grids) or by the *unexplained* state (audio no raw frame matches: a pitch shift, a heavy
effect). Leaving the raw track's order costs one jump, wherever it lands, so a cut of minutes, a
loop, a swap and a reorder all cost the same. All costs are in units of the pair's own contrast,
``random - best``: the median distance of a random (edit, raw) frame pair minus the median
distance of each edit frame to its closest raw frame. A codec, a mastering chain or a crossfade
raises both medians alike, so the thresholds move with the pair instead of with seed 1.

Method: DTW with jumps (Fremerey et al., ISMIR 2010) on frames instead of beats, with an
insertion state as in profile HMMs.

Shape:
    R: [shape=(F, S)] raw frame features; E: [shape=(F, T)] edit frame features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from editorbot.editing.labels.config import PathConfig

UNEXPLAINED = -1
"""Raw frame of an edit frame the path explains by the unexplained state."""

_DIAG, _HOLD, _SKIP, _JUMP, _FROM_U = 0, 1, 2, 3, 4
_BLOCK = 256
"""[frames] edit frames whose distances to every raw frame are computed in one matmul."""


@dataclass(frozen=True)
class Scale:
    """The pair's cost scale: what a matched frame and a random frame cost."""

    best: float
    """[distance] median over edit frames of the distance to the closest raw frame."""
    random: float
    """[distance] median distance of random (edit, raw) frame pairs."""

    @property
    def unit(self) -> float:
        """[distance] one unit of cost: what a frame matched to the wrong raw frame adds."""
        return max(self.random - self.best, 1e-6)


@dataclass(frozen=True)
class Path:
    """The cheapest explanation of the edit."""

    source: np.ndarray
    """[shape=(T,)] raw frame of each edit frame, or ``UNEXPLAINED``."""
    cost: np.ndarray
    """[shape=(T,)] distance of each edit frame to its source (the unexplained cost there)."""
    scale: Scale
    """the pair's cost scale."""


def distances(E: np.ndarray, R: np.ndarray, t0: int, t1: int) -> np.ndarray:
    """[shape=(t1 - t0, S)] squared distances of edit frames t0..t1 to every raw frame."""
    e = E[:, t0:t1]
    d = (e**2).sum(axis=0)[:, None] + (R**2).sum(axis=0)[None] - 2.0 * (e.T @ R)
    return np.maximum(d, 0.0)


def pair_scale(E: np.ndarray, R: np.ndarray, *, seed: int = 0) -> Scale:
    """The medians :class:`Scale` holds (closest raw frame of up to 1,000 edit frames)."""
    rng = np.random.default_rng(seed)
    T, S = E.shape[1], R.shape[1]
    idx = np.unique(np.linspace(0, T - 1, min(T, 1000)).astype(int))
    best = [float(distances(E, R, int(t), int(t) + 1).min()) for t in idx]
    i, j = rng.integers(0, S, 4000), rng.integers(0, T, 4000)
    rand = ((R[:, i] - E[:, j]) ** 2).sum(axis=0)
    return Scale(float(np.median(best)), float(np.median(rand)))


def best_path(E: np.ndarray, R: np.ndarray, config: PathConfig) -> Path:
    """The cheapest path (see the module docstring).

    Args:
        E: [shape=(F, T)] edit features.
        R: [shape=(F, S)] raw features.
        config: the costs, in units of the pair's contrast.

    Returns:
        The path, one source per edit frame.
    """
    scale = pair_scale(E, R)
    u = scale.unit
    jump, step, c_u = config.jump * u, config.step * u, scale.best + config.unexplained * u
    enter_u = config.enter_unexplained * u
    T, S = E.shape[1], R.shape[1]
    choice = np.zeros((T, S), dtype=np.uint8)
    from_u = np.zeros(T, dtype=bool)
    argbest = np.zeros(T, dtype=np.int64)
    inf = np.float64(np.inf)
    D = np.empty(S)
    d_u = 0.0
    for b0 in range(0, T, _BLOCK):
        C = distances(E, R, b0, min(b0 + _BLOCK, T))
        for k in range(C.shape[0]):
            t = b0 + k
            c = C[k]
            if t == 0:
                D, d_u = c.astype(np.float64), c_u
                continue
            a = int(np.argmin(D))
            argbest[t - 1] = a
            best = D[a]
            cand = np.empty((4, S))
            cand[_DIAG, 0], cand[_DIAG, 1:] = inf, D[:-1]
            cand[_HOLD] = D + step
            cand[_SKIP, :2], cand[_SKIP, 2:] = inf, D[:-2] + step
            from_plain = best + jump
            from_unexp = d_u + jump
            cand[_JUMP] = min(from_plain, from_unexp)
            ch = np.argmin(cand, axis=0).astype(np.uint8)
            jumped = ch == _JUMP
            if from_unexp < from_plain:
                ch[jumped] = _FROM_U
            choice[t] = ch
            stay_u, into_u = d_u + c_u, best + enter_u + c_u
            from_u[t] = stay_u <= into_u
            D = cand[ch.clip(0, 3), np.arange(S)] + c
            d_u = min(stay_u, into_u)
    source = np.empty(T, dtype=np.int64)
    s = UNEXPLAINED if d_u < D.min() else int(np.argmin(D))
    for t in range(T - 1, -1, -1):
        source[t] = s
        if t == 0:
            break
        if s == UNEXPLAINED:
            s = UNEXPLAINED if from_u[t] else int(argbest[t - 1])
            continue
        ch = choice[t, s]
        if ch == _DIAG:
            s -= 1
        elif ch == _SKIP:
            s -= 2
        elif ch == _JUMP:
            s = int(argbest[t - 1])
        elif ch == _FROM_U:
            s = UNEXPLAINED
    cost = np.full(T, c_u)
    on = source >= 0
    cost[on] = ((E[:, on] - R[:, source[on]]) ** 2).sum(axis=0)
    return Path(source, cost, scale)
