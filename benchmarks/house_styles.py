"""Three house styles for the real-music benchmark, as independent numpy editors.

Each style reads the raw track on a beat grid (phrases of 16 beats from the grid's first beat)
and decides from the audio alone — the level of each phrase against the others (loudness rank)
and the phrase's position in the track — then renders its own edit in plain numpy (no editorbot
import: the edits are not made by the renderer the learners were written against).

- ``radio``: cut the quietest inner phrases (the first phrase and the last bar stay), as many
  as make a third of the track's beats (rounded up to a phrase); fade the last bar out.
- ``extended``: loop the intro's first bar 3 times, and the first two bars of every phrase
  louder than the track's median phrase twice. Longer than the raw track.
- ``energy``: +6 dB on the quietest third of the inner phrases, -3 dB on the loudest one, a
  fade in over the first bar and out over the last. The raw length.

A style returns :class:`Step` s, named as editorbot's edit language names the same operations
(type, size in beats, amount), so the benchmark can write the truth as a decision list; the
render here is its own. Joins go through the label suite's editor (:mod:`suite_editor`: an
equal-power crossfade of 5-80 ms at every seam) and so does the export (peak -1 dBFS, MP3).

Shape:
    y: [shape=(C, L)] float audio; beat_times: [shape=(N,)] seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import suite_editor

PHRASE = 16
"""[beats] a phrase (4 bars of 4)."""
BAR = 4
"""[beats] a bar."""
RAMP_SEC = 0.010
"""[s] how long a gain ride takes to reach its level (no click at the phrase's edge)."""


@dataclass(frozen=True)
class Step:
    """One operation of a style, in editorbot's names."""

    beat: int
    """[beats] first raw beat it consumes."""
    type: str
    """CUT, LOOP, GAIN, FADE_IN or FADE_OUT."""
    n_beats: int
    """[beats] raw beats it consumes (1, 4, 8, 16 or 32)."""
    amount: str
    """editorbot's amount name (LOOP NEUTRAL = 2x, POS_SMALL = 3x; GAIN POS_LARGE = +6 dB,
    NEG_SMALL = -3 dB; FADE_* POS_LARGE = from silence)."""
    value: float = 0.0
    """[repeats] for LOOP, [dB] for GAIN; unused for the rest."""


def phrase_levels(y: np.ndarray, sr: int, beat_times: np.ndarray) -> np.ndarray:
    """[shape=(P,)] [dB] RMS level of each full phrase of the grid (mono mix)."""
    mono = y.mean(axis=0)
    edges = _edges(beat_times, sr, y.shape[1])
    P = len(beat_times) // PHRASE
    levels = []
    for p in range(P):
        seg = mono[edges[p * PHRASE] : edges[(p + 1) * PHRASE]]
        levels.append(10 * np.log10(float(np.mean(seg**2)) + 1e-12))
    return np.asarray(levels)


def _inner(levels: np.ndarray, n_beats: int, *, tail: int) -> np.ndarray:
    """Indices of the full phrases after the first that end at least ``tail`` beats before the
    track's end (the last full phrase is not inner when ``tail`` reaches into it)."""
    P = len(levels)
    return np.array([p for p in range(1, P) if (p + 1) * PHRASE <= n_beats - tail], dtype=int)


def radio(y: np.ndarray, sr: int, beat_times: np.ndarray) -> list[Step]:
    """Cut the quietest inner phrases, a third of the beats' worth; fade the last bar out."""
    N = len(beat_times)
    levels = phrase_levels(y, sr, beat_times)
    inner = _inner(levels, N, tail=BAR)
    k = min(len(inner), -(-N // (3 * PHRASE)))  # ceil(N / 3 / PHRASE) phrases
    cut = sorted(inner[np.argsort(levels[inner], kind="stable")[:k]])
    steps = [Step(int(p) * PHRASE, "CUT", PHRASE, "NEUTRAL") for p in cut]
    return [*steps, Step(N - BAR, "FADE_OUT", BAR, "POS_LARGE")]


def extended(y: np.ndarray, sr: int, beat_times: np.ndarray) -> list[Step]:
    """Loop the intro bar 3x; loop the first two bars of each louder-than-median phrase 2x."""
    levels = phrase_levels(y, sr, beat_times)
    steps = [Step(0, "LOOP", BAR, "POS_SMALL", 3.0)]
    if len(levels) == 0:
        return steps
    median = float(np.median(levels))
    for p in range(1, len(levels)):
        if levels[p] > median:
            steps.append(Step(p * PHRASE, "LOOP", 2 * BAR, "NEUTRAL", 2.0))
    return steps


def energy(y: np.ndarray, sr: int, beat_times: np.ndarray) -> list[Step]:
    """+6 dB on the quietest third of the inner phrases, -3 dB on the loudest; fades at the
    ends (a bar each)."""
    N = len(beat_times)
    levels = phrase_levels(y, sr, beat_times)
    inner = _inner(levels, N, tail=BAR)
    order = inner[np.argsort(levels[inner], kind="stable")]
    k = round(len(inner) / 3)
    rides = {int(p): (6.0, "POS_LARGE") for p in order[:k]}
    if len(order) > k:
        rides[int(order[-1])] = (-3.0, "NEG_SMALL")
    steps = [Step(0, "FADE_IN", BAR, "POS_LARGE")]
    steps += [Step(p * PHRASE, "GAIN", PHRASE, a, db) for p, (db, a) in sorted(rides.items())]
    return [*steps, Step(N - BAR, "FADE_OUT", BAR, "POS_LARGE")]


STYLES: dict[str, Callable[[np.ndarray, int, np.ndarray], list[Step]]] = {
    "radio": radio,
    "extended": extended,
    "energy": energy,
}
"""The house styles by name."""


def types_per_beat(steps: list[Step], n_beats: int) -> list[str]:
    """[N] the type of the step that consumes each raw beat (KEEP where none does)."""
    types = ["KEEP"] * n_beats
    for s in steps:
        types[s.beat : s.beat + s.n_beats] = [s.type] * s.n_beats
    return types


def render(
    y: np.ndarray, sr: int, beat_times: np.ndarray, steps: list[Step], rng: np.random.Generator
) -> suite_editor.Edit:
    """The style's edit of ``y`` (not exported yet): raw order, steps applied, seams crossfaded."""
    edges = _edges(beat_times, sr, y.shape[1])
    N = len(beat_times)
    pieces: list[suite_editor._Piece] = []
    c = 0
    for s in sorted(steps, key=lambda s: s.beat):
        if s.beat > c:
            pieces.append(_raw(y, edges, c, s.beat))
        pieces += _apply(y, sr, edges, s)
        c = s.beat + s.n_beats
    if c < N:
        pieces.append(_raw(y, edges, c, N))
    out = suite_editor._join(pieces, sr, rng)
    return suite_editor.Edit(out, sr, beat_times, types_per_beat(steps, N))


def _edges(beat_times: np.ndarray, sr: int, n_samples: int) -> np.ndarray:
    """[shape=(N + 1,)] [samples] each beat's start; the first beat starts the track, the last
    ends it."""
    edges = np.append(np.round(np.asarray(beat_times) * sr).astype(int), n_samples)
    edges[0] = 0
    return edges


def _raw(y: np.ndarray, edges: np.ndarray, b0: int, b1: int) -> suite_editor._Piece:
    return suite_editor._Piece(y[:, edges[b0] : edges[b1]], int(edges[b0]), int(edges[b1]))


def _apply(y: np.ndarray, sr: int, edges: np.ndarray, s: Step) -> list[suite_editor._Piece]:
    """The pieces one step plays."""
    seg = _raw(y, edges, s.beat, s.beat + s.n_beats)
    if s.type == "CUT":
        return []
    if s.type == "LOOP":
        return [seg] * int(s.value)
    L = seg.y.shape[1]
    if s.type == "GAIN":  # a ride: the level moves over RAMP_SEC inside the phrase, no seam
        ramp = min(int(RAMP_SEC * sr), L // 2)
        g = np.full(L, 10 ** (s.value / 20))
        g[:ramp] = np.linspace(1.0, g[0], ramp)
        g[L - ramp :] = np.linspace(g[0], 1.0, ramp)
        return [suite_editor._Piece(seg.y * g, seg.start, seg.end)]
    fade = np.sin(0.5 * np.pi * np.linspace(0.0, 1.0, L))  # equal power, from silence
    fade = fade if s.type == "FADE_IN" else fade[::-1]
    return [suite_editor._Piece(seg.y * fade, seg.start, seg.end)]
