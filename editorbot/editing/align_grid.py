"""The raw beat grid corrected where the edit's seams show the editor's grid.

A tracked grid is a few milliseconds off the grid the editor cut on (each beat snaps to its own
attack, 10-20 ms either way). That is harmless for the feature alignment, whose frames are 46 ms,
but not for what follows it, which works sample for sample: exact-copy checks compare a raw
beat with the edit, and effects are resynthesised at positions summed from beat lengths. A cut
at 5 ms from where the grid says leaves neither exact.

The edit itself says where the editor's beats were, wherever something changes in it:

- a jump in the source: before the seam the edit is a copy of the raw at one offset, after it
  at another (both found to the sample by cross-correlation and checked to be exact); the seam
  is the centre of the renderer's equal-power crossfade between the two copies, found where
  the modelled crossfade reproduces the edit to float rounding. The raw beat ending before the
  seam and the one starting after it both move there;
- a copy next to an effect (a gain, EQ or stretch starts or stops): the first (last) sample off
  the copy, plus (minus) half the renderer's ramp or crossfade;
- the edit's first and last samples: the raw beat it opens with starts there, the one it
  closes with ends there (offsets from the copy, or from the correlation under a fade).

Boundaries nothing touches keep the tracked times; where the grid already fits (a true grid),
nothing moves.

Method: change-point detection by least squares (e.g. Truong, Oudre & Vayatis, "Selective
review of offline change point detection methods", https://arxiv.org/abs/1801.00718, §3).

Shape:
    y: [shape=(L,)] mono at the tracks' own rate; beat_times: [shape=(N,)] seconds.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from editorbot.editing.align import Alignment
from editorbot.editing.align_beats import beat_edges
from editorbot.editing.align_dp import Unit
from editorbot.editing.dsp import crossfade_windows, slice_padded
from editorbot.editing.render import RenderConfig, half_fades

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridConfig:
    """How seams move the grid."""

    search_ms: float = 120.0
    """[ms] how far from the alignment's unit boundary a seam is looked for (two 46 ms
    frames of alignment error and the tracked grid's 10-20 ms)."""
    exact_db: float = -45.0
    """[dB] residual under which a run is a copy of the raw (a copy matches to about -120 dB;
    the quietest effect, a 1 dB gain, leaves -19 dB, an EQ on dull music -40)."""
    max_move: float = 0.2
    """[beats] furthest a boundary may move (a seam further away belongs to another one)."""
    max_move_ms: float = 40.0
    """[ms] and at most this far: a tracked beat is a few ms off the editor's, under 20 ms. A
    song that repeats a section sample for sample can make a copy look exact at the wrong
    place; where that repeat stops matching (mid-beat) is no seam, and it can lie further from
    any beat than this (benchmarks/RESULTS.md, alignment into decision lists)."""
    window: int = 8192
    """[samples] longest stretch of a run used to find its offset (0.19 s at 44.1 kHz)."""


@dataclass(frozen=True)
class _Copy:
    """An edit beat (alignment unit) found to be an exact copy of the raw at one offset."""

    start: int
    """[edit samples] where the unit starts (the alignment's frame, ± a frame or two)."""
    end: int
    """[edit samples] where it ends."""
    offset: int
    """[samples] raw sample = edit sample + offset, inside the unit."""


def refine_grid(
    al: Alignment,
    y_raw: np.ndarray,
    y_edit: np.ndarray,
    *,
    sr: int,
    hop: int,
    beat_times: np.ndarray,
    config: GridConfig | None = None,
) -> np.ndarray:
    """Beat times with the boundaries at the edit's seams moved to where the seams put them.

    Args:
        al: the alignment (units at the analysis hop).
        y_raw: [shape=(L,)] mono raw track.
        y_edit: [shape=(L_edit,)] mono edit at the same rate.
        sr: [Hz] their rate.
        hop: [samples at sr] one alignment frame.
        beat_times: [shape=(N,)] [s] the grid the alignment used.
        config: settings.

    Returns:
        [shape=(N,)] [s] the corrected grid (a copy; beat 0 never moves).
    """
    config = config or GridConfig()
    times = np.asarray(beat_times, dtype=np.float64)
    edges = np.append(np.round(times * sr).astype(np.int64), len(y_raw))
    copies = _copies(al, y_raw, y_edit, edges, hop, config)
    moves: dict[int, list[int]] = {}
    for k in range(len(copies) - 1):
        a, b = copies[k], copies[k + 1]
        if a is not None and b is not None:
            if a.offset == b.offset:
                continue  # no jump between them
            seam = _seam(y_raw, y_edit, a, b, sr, config)
            raw_pos = [] if seam is None else [seam + a.offset, seam + b.offset]
        elif a is not None or b is not None:
            half = _half_fade(al, al.units[k], al.units[k + 1], sr)
            raw_pos = _copy_edge(y_raw, y_edit, a, b, half, sr, config)
        else:
            continue
        for pos in raw_pos:
            moves.setdefault(int(np.argmin(np.abs(edges[:-1] - pos))), []).append(pos)
    for pos in _edit_ends(al, copies, y_raw, y_edit, edges, hop, config):
        moves.setdefault(int(np.argmin(np.abs(edges[:-1] - pos))), []).append(pos)
    return _apply(times, edges, moves, sr, config)


def _edit_ends(
    al: Alignment,
    copies: list[_Copy | None],
    y_raw: np.ndarray,
    y_edit: np.ndarray,
    edges: np.ndarray,
    hop: int,
    config: GridConfig,
) -> list[int]:
    """[raw samples] where the raw audio the edit opens with starts and where what it closes
    with ends (the edit's first and last samples are boundaries too), for unstretched forward
    units: from the copy's offset, or where an effect sits on them, from the correlation
    (level effects keep the waveform's timing)."""
    found = []
    for k, at in ((0, 0), (len(al.units) - 1, len(y_edit))):
        u = al.units[k]
        var = al.variants[u.variant]
        if var.rate != 1.0 or var.reverse:
            continue
        c = copies[k]
        if c is not None:
            found.append(at + c.offset)
            continue
        lo, hi = u.start_frame * hop + hop // 2, u.end_frame * hop - hop // 2
        if hi - lo < hop:
            continue
        guess = int(edges[u.beat]) - u.start_frame * hop
        lag = _best_lag(y_edit[lo:hi], y_raw, lo, guess - 2 * hop, guess + 2 * hop)
        if lag is not None and lag[1] >= _SAME_WAVEFORM:
            found.append(at + lag[0])
    return found


_SAME_WAVEFORM = 0.9
"""[correlation] a gain, fade or shelf leaves the waveform this alike (unrelated music: ~0.1)."""


def _half_fade(al: Alignment, u: Unit, v: Unit, sr: int) -> int:
    """[samples] half the renderer's fade between units ``u`` and ``v``: a ramp where the raw
    goes on under another unstretched effect, else a crossfade (a jump, a stretch)."""
    crossfade, ramp = half_fades(RenderConfig(), sr)
    var_u, var_v = al.variants[u.variant], al.variants[v.variant]
    on = v.beat == u.beat + 1 and var_u.rate == var_v.rate == 1.0
    on = on and not (var_u.reverse or var_v.reverse)
    return ramp if on else crossfade


def _copy_edge(
    y_raw: np.ndarray,
    y_edit: np.ndarray,
    a: _Copy | None,
    b: _Copy | None,
    half: int,
    sr: int,
    config: GridConfig,
) -> list[int]:
    """[raw samples] the boundary where copy ``a`` ends (``b`` None) or copy ``b`` starts
    (``a`` None) next to audio that is not a copy: the first (last) sample off the copy, plus
    (minus) the fade's half. [] where the copy runs on or no clear change is found."""
    c = a if a is not None else b
    assert c is not None
    reach = round(config.search_ms * 1e-3 * sr)
    if a is not None:
        lo, hi = (c.start + c.end) // 2, min(c.end + reach, len(y_edit))
    else:
        lo, hi = max(c.start - reach, 0), (c.start + c.end) // 2
    if hi - lo < 4 * half:
        return []
    e = y_edit[lo:hi].astype(np.float64)
    err = (e - slice_padded(y_raw[None], lo + c.offset, hi + c.offset)[0].astype(np.float64)) ** 2
    off = np.flatnonzero(err > _EXACT_POWER * float(np.mean(e**2)))
    if len(off) == 0:
        return []
    # The other side must really differ (not one glitch): the stretch beyond the fade.
    p = int(off[0]) + half if a is not None else int(off[-1]) + 1 - half
    side = slice(p + half, len(e)) if a is not None else slice(0, max(p - half, 0))
    energy = float(e[side] @ e[side]) + 1e-12
    if 10.0 * np.log10(float(err[side].sum()) / energy + 1e-12) < config.exact_db:
        return []
    return [lo + p + c.offset]


def smoothed_grid(beat_times: np.ndarray, *, half_window: int = 4) -> np.ndarray:
    """[shape=(N,)] [s] each beat (beat 0 kept) on the line fitted by least squares to the
    beats within ``half_window`` of it: the local tempo without per-beat jitter.

    A tracker that snaps each beat to its own attack puts the beats of two identical bars at
    different offsets (a few ms either way); the alignment's sample points then differ
    between the two, and of two equally good readings of a song's repeated sections the one
    the jitter happens to favour wins over the near one (benchmarks/RESULTS.md, alignment into
    decision lists). Over nine beats a line follows a gradual tempo change
    (2 ms off at 5 % over 40 beats) but not a steep one (9 ms at 25 % over 40 beats).
    """
    t = np.asarray(beat_times, dtype=np.float64).copy()
    y = t[1:]
    n = len(y)
    if n < 3:
        return t
    j = np.arange(n, dtype=np.float64)

    def window_sum(v: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(v)])
        lo = np.clip(np.arange(n) - half_window, 0, n)
        hi = np.clip(np.arange(n) + half_window + 1, 0, n)
        return c[hi] - c[lo]

    s0, s1, s2 = window_sum(np.ones(n)), window_sum(j), window_sum(j * j)
    sy, sjy = window_sum(y), window_sum(j * y)
    slope = (s0 * sjy - s1 * sy) / np.maximum(s0 * s2 - s1 * s1, 1e-12)
    t[1:] = (sy - slope * s1) / s0 + slope * j
    return t


def trimmed_tail(
    beat_times: np.ndarray,
    y: np.ndarray,
    *,
    sr: int,
    tail_db: float = 15.0,
    max_tail_sec: float = 4.0,
) -> np.ndarray:
    """[shape=(M,)] [s] the grid without its trailing beats in the track's release tail (each
    more than ``tail_db`` below the median beat's level); the last beat left runs to the end.

    A tracker extends the grid at the steady period to the end of the file, so the second or
    two of decay after the last note becomes three or four beats of near silence. An editor's
    last decision (a two-bar fade-out to the end) then covers a length no size of the edit
    language has, and the parse splits the outro wrongly; without those beats it covers the
    last musical beats and the tail, as the renderer plays it.

    Args:
        beat_times: [shape=(N,)] [s] the grid.
        y: [shape=(L,)] mono audio at ``sr``.
        sr: [Hz] its rate.
        tail_db: [dB] how far below the median beat a tail beat is (demo songs' decay tails
            are 20-25 dB below; the quiet bars of a song's body stay within about 10).
        max_tail_sec: [s] longest release tail (demo songs': 1.5-2 s); a longer quiet end is
            music (a soft coda can sit as far below the median) and stays.
    """
    t = np.asarray(beat_times, dtype=np.float64)
    edges = beat_edges(t, sr, len(y))
    power = np.array([np.mean(np.square(y[a:b], dtype=np.float64)) if b > a else 0.0
                      for a, b in itertools.pairwise(edges)])  # fmt: skip
    level = 10.0 * np.log10(power + 1e-12)  # [dB]
    floor = float(np.median(level)) - tail_db
    n = len(t)
    while n > 1 and level[n - 1] < floor:
        n -= 1
    if n == len(t):
        return t
    tail = len(y) / sr - t[n]  # [s] from the first quiet beat to the end
    # A longer quiet stretch is quiet music (a soft coda, a fade-out ending), not a release.
    return t[:n] if tail <= max_tail_sec else t


def wobble_ms(beat_times: np.ndarray) -> float:
    """[ms] RMS distance of the beats (beat 0 aside) from :func:`smoothed_grid`'s local lines:
    a few ms where a steady grid only jitters, tens where the tempo itself moves."""
    t = np.asarray(beat_times, dtype=np.float64)
    if len(t) < 2:
        return 0.0
    return 1e3 * float(np.sqrt(np.mean((t - smoothed_grid(t))[1:] ** 2)))


def doubled_grid(beat_times: np.ndarray, *, duration_sec: float) -> np.ndarray:
    """[s] a beat between every two, and half a beat after the last one where the track goes
    on (the grid at twice the tempo).

    A grid that covers the track from 0 s (:func:`editorbot.audio.beats.covering_grid`) may
    start with a sliver before its first tracked beat; that first beat is re-covered at the new
    period, so the doubled grid does not put a beat in the middle of the sliver.
    """
    from editorbot.audio.beats import EDGE_PERIODS

    t = np.asarray(beat_times, dtype=np.float64)
    if len(t) < 2:
        return t
    mid = (t[:-1] + t[1:]) / 2.0
    out = np.empty(2 * len(t) - 1)
    out[0::2], out[1::2] = t, mid
    if t[0] == 0.0 and len(t) > 2:  # a covering grid: its first beat may be a sliver
        half = (t[2] - t[1]) / 2.0
        n_head = max(1, int(np.ceil(t[1] / half - EDGE_PERIODS)))
        head = t[1] - half * np.arange(n_head, 0, -1)
        head[0] = 0.0
        head = head[np.concatenate([[True], np.diff(head) > EDGE_PERIODS * half])]
        out = np.concatenate([head, out[2:]])
    after = t[-1] + (t[-1] - t[-2]) / 2.0
    return np.append(out, after) if after < duration_sec else out


def _copies(
    al: Alignment,
    y_raw: np.ndarray,
    y_edit: np.ndarray,
    edges: np.ndarray,
    hop: int,
    config: GridConfig,
) -> list[_Copy | None]:
    """Per unit: the offset at which its middle is an exact copy of the raw (None if none).

    Tried in order: the previous unit's offset (the edit went on), then the raw beats the unit
    may be, near where the alignment puts it: its own, the one after the previous unit's, and
    those whole bars to either side (repeated bars sound alike to the features)."""
    out: list[_Copy | None] = []
    prev_beat: int | None = None
    for u in al.units:
        start, end = u.start_frame * hop, u.end_frame * hop
        lo, hi = start + hop, end - hop  # clear of the seams, whatever the frame error
        if hi - lo < hop // 2:
            out.append(None)
            prev_beat = u.beat
            continue
        mid = (lo + hi) // 2
        lo, hi = max(lo, mid - config.window // 2), min(hi, mid + config.window // 2)
        w = y_edit[lo:hi]
        found = None
        last = out[-1] if out else None
        if last is not None and _exact(w, y_raw, lo + last.offset, config):
            found = last.offset
        else:
            beats = [u.beat] if prev_beat is None else [u.beat, prev_beat + 1]
            beats += [u.beat + s * k for k in (4, 8, 16, 32) for s in (1, -1)]
            for c in dict.fromkeys(b for b in beats if 0 <= b < len(edges) - 1):
                guess = int(edges[c]) - start
                lag = _best_lag(w, y_raw, lo, guess - 2 * hop, guess + 2 * hop)
                if lag is not None and _exact(w, y_raw, lo + lag[0], config):
                    found = lag[0]
                    break
        out.append(None if found is None else _Copy(start, end, found))
        prev_beat = u.beat
    return out


def _exact(w: np.ndarray, y_raw: np.ndarray, at: int, config: GridConfig) -> bool:
    """True if raw ``[at, at + len(w))`` equals ``w`` to ``exact_db``."""
    if at < 0 or at + len(w) > len(y_raw):
        return False
    return _residual_db(w, y_raw[at : at + len(w)]) < config.exact_db


def _best_lag(
    w: np.ndarray, y_raw: np.ndarray, at: int, d_lo: int, d_hi: int
) -> tuple[int, float] | None:
    """[samples] the offset d in ``[d_lo, d_hi]`` whose raw ``[at + d, at + d + len(w))`` has
    the highest normalised correlation with ``w``, and that correlation [-1, 1] (None if the
    range leaves the track)."""
    from scipy.signal import correlate

    n = len(w)
    lo, hi = max(at + d_lo, 0), min(at + d_hi, len(y_raw) - n)
    if hi < lo or n == 0:
        return None
    seg = y_raw[lo : hi + n].astype(np.float64)
    xc = correlate(seg, w.astype(np.float64), mode="valid", method="fft")
    energy = np.maximum(correlate(seg**2, np.ones(n), mode="valid", method="fft"), 1e-12)
    ncc = xc / np.sqrt(energy * max(float(w.astype(np.float64) @ w), 1e-12))
    k = int(np.argmax(ncc))
    return lo + k - at, float(ncc[k])


def _residual_db(x: np.ndarray, ref: np.ndarray) -> float:
    """[dB] energy of ``x - ref`` relative to ``x`` (shorter of the two)."""
    n = min(len(x), len(ref))
    x64 = x[:n].astype(np.float64)
    d = x64 - ref[:n]
    return 10.0 * float(np.log10(float(d @ d) / (float(x64 @ x64) + 1e-12) + 1e-12))


def _seam(
    y_raw: np.ndarray, y_edit: np.ndarray, a: _Copy, b: _Copy, sr: int, config: GridConfig
) -> int | None:
    """[edit samples] where copy ``a`` hands over to copy ``b``: the centre of the renderer's
    equal-power crossfade between them, to the sample; None if no crossfade explains the edit
    there (an effect or another cut at the seam)."""
    h, _ = half_fades(RenderConfig(), sr)  # [samples] half the crossfade
    reach = round(config.search_ms * 1e-3 * sr)
    lo = max((a.start + a.end) // 2, b.start - reach, 0)
    hi = min((b.start + b.end) // 2, a.end + reach, len(y_edit))
    if hi - lo < 4 * h:
        return None
    e = y_edit[lo:hi].astype(np.float64)
    r_a = slice_padded(y_raw[None], lo + a.offset, hi + a.offset)[0].astype(np.float64)
    r_b = slice_padded(y_raw[None], lo + b.offset, hi + b.offset)[0].astype(np.float64)
    # Copy a matches exactly up to the fade's first sample, copy b from its last on: the first
    # sample off a and the last off b bracket the fade (float32 rounding is ~1e-14 of the
    # power; the fade's first gain step already ~1e-6).
    thr = _EXACT_POWER * float(np.mean(e**2))
    off_a, off_b = np.flatnonzero((e - r_a) ** 2 > thr), np.flatnonzero((e - r_b) ** 2 > thr)
    if len(off_a) == 0 or len(off_b) == 0 or off_a[0] >= off_b[-1]:
        return None
    centre = (int(off_a[0]) + int(off_b[-1]) + 1) // 2
    w_out, w_in = crossfade_windows(2 * h, power=True)
    best, best_db = None, config.exact_db
    for p in range(max(centre - _SLACK, h), min(centre + _SLACK, len(e) - h) + 1):
        x = slice(p - h, p + h)
        db = _residual_db(e[x], r_a[x] * w_out + r_b[x] * w_in)
        if db < best_db:
            best, best_db = p, db
    return None if best is None else lo + best


_EXACT_POWER = 1e-9
"""[fraction of the mean power] a sample's squared error above this is 'not a copy'."""
_SLACK = 16
"""[samples] how far from the bracketed centre the crossfade is tried (the fade's first and
last gains are tiny, so a quiet sample there may hide its edge by a few samples)."""


def _apply(
    times: np.ndarray,
    edges: np.ndarray,
    moves: dict[int, list[int]],
    sr: int,
    config: GridConfig,
) -> np.ndarray:
    """The grid with each proposed boundary (median of its proposals) moved, where the move is
    within ``max_move`` and ``max_move_ms`` and keeps the grid increasing; other beats keep
    their times."""
    out, refined = edges.copy(), times.copy()
    N = len(times)
    for k in sorted(moves):
        if not 0 < k < N:
            continue  # beat 0 starts the track
        target = int(np.median(moves[k]))
        beat = min(out[k] - out[k - 1], out[k + 1] - out[k])
        limit = min(config.max_move * beat, config.max_move_ms * 1e-3 * sr)
        near = target != out[k] and abs(target - out[k]) <= limit
        if near and out[k - 1] < target < out[k + 1]:
            out[k], refined[k] = target, target / sr
    logger.debug("grid: %d of %d boundaries moved to the edit's seams", (out != edges).sum(), N)
    return refined
