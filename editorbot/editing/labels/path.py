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

_DIAG, _HOLD, _SKIP, _JUMP, _SWITCH = 0, 1, 2, 3, 4
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
    """[shape=(T,)] raw frame of each edit frame."""
    changed: np.ndarray
    """[shape=(T,)] bool: the frame is explained by the changed layer (its raw frame plays
    under an effect the features do not follow)."""
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

    Three layers share the raw position: *plain* (the frame costs its distance to the raw
    frame), *shifted* (its distance to the raw frame with the chroma rolled by the best pitch
    shift of the action table) and *changed* (a flat cost: the raw frame plays under an effect
    the features do not follow). Each moves on one raw frame per edit frame, or holds or skips
    one at its step cost; switching layers in place costs ``config.switch``, a jump anywhere
    ``config.jump``.

    Args:
        E: [shape=(F, T)] edit features (chroma rows first).
        R: [shape=(F, S)] raw features.
        config: the costs, in units of the pair's contrast.

    Returns:
        The path, one source per edit frame, and which frames the changed layers explain.
    """
    scale = pair_scale(E, R)
    u = scale.unit
    jump, switch = config.jump * u, config.switch * u
    steps = np.array([config.step, config.step, config.changed_step]) * u
    flat = scale.best + config.unexplained * u
    shift_cost = config.shifted * u
    T, S = E.shape[1], R.shape[1]
    n_layers = 3
    choice = np.zeros((n_layers, T, S), dtype=np.uint8)
    came_from = np.zeros((n_layers, T, S), dtype=np.uint8)  # [layer] a switch's source layer
    arg = np.zeros((T, 2), dtype=np.int64)  # [t] (layer, raw frame) of the best state at t
    inf = np.float64(np.inf)
    Dl = np.zeros((n_layers, S))
    cand = np.empty((5, S))
    rolls = [np.concatenate([np.roll(R[:12], k, axis=0), R[12:]]) for k in _SHIFTS]
    for b0 in range(0, T, _BLOCK):
        b1 = min(b0 + _BLOCK, T)
        C = distances(E, R, b0, b1)
        C_shift = np.min([distances(E, Rk, b0, b1) for Rk in rolls], axis=0) + shift_cost
        for k in range(C.shape[0]):
            t = b0 + k
            frame = (C[k], C_shift[k], flat)
            if t == 0:
                Dl = np.stack([frame[0], frame[1], np.full(S, flat)]).astype(np.float64)
                Dl[1:] += switch
                continue
            top = int(np.argmin(Dl.min(axis=1)))
            arg[t - 1] = top, int(np.argmin(Dl[top]))
            best = Dl[top].min()
            new = np.empty_like(Dl)
            for layer in range(n_layers):
                own = Dl[layer]
                others = [m for m in range(n_layers) if m != layer]
                other = np.min(Dl[others], axis=0)
                cand[_DIAG, 0], cand[_DIAG, 1:] = inf, own[:-1]
                cand[_HOLD] = own + steps[layer]
                cand[_SKIP, :2], cand[_SKIP, 2:] = inf, own[:-2] + steps[layer]
                cand[_JUMP] = best + jump
                cand[_SWITCH, 0], cand[_SWITCH, 1:] = inf, other[:-1] + switch
                ch = np.argmin(cand, axis=0).astype(np.uint8)
                choice[layer, t] = ch
                src = np.asarray(others)[np.argmin(Dl[others], axis=0)]
                came_from[layer, t, 1:] = src[:-1]
                new[layer] = cand[ch, np.arange(S)] + frame[layer]
            Dl = new
    layer_of = np.zeros(T, dtype=np.int64)
    source = np.empty(T, dtype=np.int64)
    best_layer = int(np.argmin(Dl.min(axis=1)))
    layer, s = best_layer, int(np.argmin(Dl[best_layer]))
    for t in range(T - 1, -1, -1):
        source[t], layer_of[t] = s, layer
        if t == 0:
            break
        ch = choice[layer, t, s]
        if ch == _DIAG:
            s -= 1
        elif ch == _SKIP:
            s -= 2
        elif ch == _JUMP:
            layer, s = (int(x) for x in arg[t - 1])
        elif ch == _SWITCH:
            layer, s = int(came_from[layer, t, s]), s - 1
    cost = ((E - R[:, source]) ** 2).sum(axis=0)
    cost[layer_of == 2] = flat
    return Path(source, layer_of > 0, cost, scale)


_SHIFTS = (-7, -5, -3, -2, -1, 1, 2, 3, 5, 7)
"""[semitones] the pitch shifts of the action table (the shifted layer's chroma rolls)."""
