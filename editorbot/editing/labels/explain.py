"""From the frame path to the edit's beats: the raw beat each output beat plays, and its effect.

The path (:mod:`editorbot.editing.labels.path`) splits into *pieces*: runs of edit frames that
follow the raw track in order in one layer of the path. A piece plays the raw beats it covers;
each beat's length against the edit frames spent on it tells a speed change, and a piece of a
changed layer (audio the plain features do not follow) is tested for a pitch shift (the raw
chroma rolled). Level effects (GAIN, the shelves, fades) are read from the mel band levels of
the edit against its source frames, after the pair's own mastering curve (their median over all
matched beats) is taken out, and must stand above the pair's own beat-to-beat spread.

The beats then go to the one parse of the edit language
(:func:`editorbot.editing.align_parse.parse_output`), which tells LOOP, SWAP_NEXT, REORDER,
REPEAT_PREV and CUT apart by what each does to the cursor and the output.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from editorbot.editing.actions import SIZE_BEATS, ActionAmount, ActionType, valid_amounts
from editorbot.editing.actions import amount_value as value
from editorbot.editing.align_parse import OutBeat
from editorbot.editing.labels.config import ExplainConfig
from editorbot.editing.labels.frames import Frames, rolled
from editorbot.editing.labels.path import Path

_T = ActionType
_PITCHES = (-7, -5, -3, -2, -1, 1, 2, 3, 5, 7)
"""[semitones] the pitch shifts the action table can express."""


@dataclass(frozen=True)
class Piece:
    """A run of edit frames that follows the raw track in order, in one layer of the path."""

    t0: int
    """[edit frames] first frame."""
    t1: int
    """[edit frames] one past the last."""
    s0: int
    """[raw frames] source of the first frame."""
    s1: int
    """[raw frames] one past the source of the last frame."""
    changed: bool
    """[flag] the path's changed layer explains it (an effect the features do not follow)."""

    @property
    def slope(self) -> float:
        """[raw frames per edit frame]."""
        return (self.s1 - self.s0) / max(self.t1 - self.t0, 1)


@dataclass(frozen=True)
class Beat:
    """One output beat with what it was measured to carry."""

    out: OutBeat
    """the raw beat and effect, as the parse reads them."""
    gain_db: float = 0.0
    """[dB] level against the source, mastering curve removed (mid bands)."""
    low_db: float = 0.0
    """[dB] the low bands' level against the mid bands'."""
    high_db: float = 0.0
    """[dB] the high bands' level against the mid bands'."""
    semitones: int = 0
    """[semitones] pitch shift found (unexplained runs)."""
    ratio: float = 1.0
    """[ratio] speed (raw length / edit length)."""
    confidence: float = 1.0
    """[0..1] how far below a random pairing its frames match (1: as well as the best)."""
    share: float = 1.0
    """[fraction] of the raw beat its piece covers (under 1 where a seam falls inside the beat:
    the grid and the editor's beat lines disagree there)."""


def pieces(path: Path, *, min_frames: int) -> list[Piece]:
    """The path's runs in edit order, without runs shorter than ``min_frames`` (a crossfade's
    smear at a seam, which plays no beat of its own)."""
    src, changed = path.source, path.changed
    out: list[Piece] = []
    t0, T = 0, len(src)
    for t in range(1, T + 1):
        if t < T and changed[t] == changed[t - 1] and 0 <= src[t] - src[t - 1] <= 2:
            continue
        if t - t0 >= min_frames:
            out.append(Piece(t0, t, int(src[t0]), int(src[t - 1]) + 1, bool(changed[t0])))
        t0 = t
    return out


def explain(
    ps: list[Piece],
    path: Path,
    raw: Frames,
    edit: Frames,
    *,
    beat_frames: np.ndarray,
    band_hz: np.ndarray,
    config: ExplainConfig,
) -> list[Beat]:
    """The edit's beats in output order (see the module docstring).

    Args:
        ps: the path's pieces (:func:`pieces`).
        path: the frame path.
        raw: the raw track's frames.
        edit: the edit's frames.
        beat_frames: [shape=(N + 1,)] raw beat boundaries in raw frames (the last: the end).
        band_hz: [shape=(n_mels,)] [Hz] band centres.
        config: thresholds.
    """
    beats: list[Beat] = []
    for p in ps:
        beats += _piece_beats(p, path, raw, edit, beat_frames, config)
    return _with_levels(beats, ps, path, raw, edit, beat_frames, band_hz, config)


def _covered(s0: float, s1: float, beat_frames: np.ndarray, min_coverage: float) -> list[int]:
    """Raw beats the raw frame range [s0, s1) covers by at least ``min_coverage`` of each."""
    lo = np.maximum(beat_frames[:-1], s0)
    hi = np.minimum(beat_frames[1:], s1)
    share = (hi - lo) / np.maximum(np.diff(beat_frames), 1e-9)
    return [int(b) for b in np.flatnonzero(share >= min_coverage)]


def _piece_beats(
    p: Piece, path: Path, raw: Frames, edit: Frames, beat_frames: np.ndarray,
    config: ExplainConfig,
) -> list[Beat]:  # fmt: skip
    """The raw beats a piece plays, each with the speed its own length tells (raw frames over
    the edit frames the path spends on it, a running median over ``speed_beats`` beats of the
    piece: one beat's count is off by a frame at each end) and, in the changed layers, the
    pitch shift of the raw chroma that matches the piece."""
    covered = _covered(p.s0, p.s1, beat_frames, config.min_coverage)
    if not covered:
        return []
    src = path.source[p.t0 : p.t1]
    spent = np.array([np.count_nonzero((src >= beat_frames[b]) & (src < beat_frames[b + 1]))
                      for b in covered], dtype=float)  # fmt: skip
    inside = np.array([min(beat_frames[b + 1], p.s1) - max(beat_frames[b], p.s0) for b in covered])
    ratios = _running_median(inside / np.maximum(spent, 1.0), config.speed_beats)
    semitones = 0
    if p.changed:
        semitones = _pitch(edit, raw, p, config)
    conf = _confidence(path, p)
    out = []
    for b, ratio, length in zip(covered, ratios, inside, strict=True):
        share = float(min(1.0, length / max(beat_frames[b + 1] - beat_frames[b], 1e-9)))
        effect = _T.KEEP
        if ratio > 1 + config.speed_tolerance:
            effect = _T.SPEED_UP
        elif ratio < 1 - config.speed_tolerance:
            effect = _T.SPEED_DOWN
        elif semitones:
            effect = _T.PITCH_UP if semitones > 0 else _T.PITCH_DOWN
        start = p.t0 + int(np.searchsorted(src, beat_frames[b]))
        ob = OutBeat(b, effect, edit_start=start)
        out.append(Beat(ob, semitones=semitones, ratio=float(ratio), confidence=conf,
                        share=share))  # fmt: skip
    return out


def _running_median(x: np.ndarray, width: int) -> np.ndarray:
    """Median of each value with its ``width // 2`` neighbours on each side (fewer at the ends)."""
    h = width // 2
    return np.array([np.median(x[max(0, i - h) : i + h + 1]) for i in range(len(x))])


def _confidence(path: Path, p: Piece) -> float:
    """[0..1] one minus the piece's cost per frame above the best, in units of the contrast."""
    per_frame = float(np.mean(path.cost[p.t0 : p.t1]))
    return float(np.clip(1.0 - (per_frame - path.scale.best) / path.scale.unit, 0.0, 1.0))


def _pitch(edit: Frames, raw: Frames, p: Piece, config: ExplainConfig) -> int:
    """[semitones] the shift of the raw chroma that best matches the piece (0: none clearly).

    Chroma cannot tell +5 from -7 (the same pitch classes); of two such readings, the one in
    the direction the piece's spectral centroid moved against its source wins."""
    e, r = edit.chroma[:, p.t0 : p.t1], raw.chroma[:, p.s0 : p.s1]
    if e.shape[1] == 0 or r.shape[1] == 0:
        return 0
    idx = np.clip(np.round(np.linspace(0, r.shape[1] - 1, e.shape[1])).astype(int), 0, None)
    r = r[:, idx]
    cost = {k: float(np.mean(((e - rolled(r, k)) ** 2).sum(axis=0))) for k in (0, *_PITCHES)}
    best = min(_PITCHES, key=lambda k: cost[k])
    if cost[best] >= (1 - config.pitch_gain) * cost[0]:
        return 0
    twin = best - 12 if best > 0 else best + 12  # the same pitch classes an octave away
    if twin in _PITCHES:
        up = _centroid(edit.levels[:, p.t0 : p.t1]) >= _centroid(raw.levels[:, p.s0 : p.s1])
        best = max(best, twin) if up else min(best, twin)
    return best


def _centroid(levels: np.ndarray) -> float:
    """[band] power-weighted mean band of the frames' summed power."""
    power = (10.0 ** (levels / 10.0)).sum(axis=1)
    return float((power * np.arange(len(power))).sum() / max(power.sum(), 1e-12))


def _with_levels(
    beats: list[Beat], ps: list[Piece], path: Path, raw: Frames, edit: Frames,
    beat_frames: np.ndarray, band_hz: np.ndarray, config: ExplainConfig,
) -> list[Beat]:  # fmt: skip
    """``beats`` with their level effects (GAIN, EQ, fades) where they stand above the pair's
    spread; the pair's mastering curve is the median band offset over all matched beats."""
    src = path.source
    offsets = np.full((len(beats), len(band_hz)), np.nan)
    for i, bt in enumerate(beats):
        if bt.out.effect != _T.KEEP:
            continue
        b = bt.out.beat
        t = np.flatnonzero((src >= beat_frames[b]) & (src < beat_frames[b + 1]))
        t = t[(t >= bt.out.edit_start - 2) & (t < bt.out.edit_start + 2 * np.diff(beat_frames)[b])]
        if len(t) == 0:
            continue
        d = edit.levels[:, t] - raw.levels[:, src[t]]
        loud = raw.levels[:, src[t]] > raw.levels[:, src[t]].max(axis=0, keepdims=True) - 40.0
        d = np.where(loud, d, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            offsets[i] = np.nanmedian(d, axis=1)
    if np.all(np.isnan(offsets)):
        return beats
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bands: no loud frame there
        curve = np.nanmedian(offsets, axis=0)
    rel = offsets - np.where(np.isnan(curve), 0.0, curve)[None]
    mid_band = (band_hz >= config.mid_hz[0]) & (band_hz <= config.mid_hz[1])
    low_band, high_band = band_hz < config.low_hz, (band_hz > config.high_hz) & (band_hz < 9000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gain = np.nanmedian(rel[:, mid_band], axis=1)
        low = np.nanmedian(rel[:, low_band], axis=1) - gain
        high = np.nanmedian(rel[:, high_band], axis=1) - gain
    g_thr = max(config.gain_floor_db, config.noise_sigmas * _spread(gain))
    lo_thr = max(config.eq_floor_db, config.noise_sigmas * _spread(low))
    hi_thr = max(config.eq_floor_db, config.noise_sigmas * _spread(high))
    out = []
    for i, bt in enumerate(beats):
        if np.isnan(gain[i]):
            out.append(bt)
            continue
        effect = bt.out.effect
        if abs(gain[i]) >= g_thr and abs(low[i]) < lo_thr and abs(high[i]) < hi_thr:
            effect = _T.GAIN
        elif abs(low[i]) >= lo_thr and abs(low[i]) / lo_thr >= abs(np.nan_to_num(high[i])) / hi_thr:
            effect = _T.EQ_LOW
        elif abs(high[i]) >= hi_thr:
            effect = _T.EQ_HIGH
        ob = OutBeat(bt.out.beat, effect, edit_start=bt.out.edit_start)
        out.append(Beat(ob, float(gain[i]), float(low[i]), float(np.nan_to_num(high[i])),
                        bt.semitones, bt.ratio, bt.confidence, bt.share))  # fmt: skip
    return _fades(out, config)


def _spread(x: np.ndarray) -> float:
    """[dB] robust standard deviation (1.4826 MAD) of the finite values of ``x``."""
    x = x[np.isfinite(x)]
    if len(x) < 4:
        return 0.0
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _fades(beats: list[Beat], config: ExplainConfig) -> list[Beat]:
    """The opening (closing) beats as FADE_IN (FADE_OUT) where the first (last) beat sits
    ``fade_db`` below and the level rises (falls) towards 0 dB: the fade's length is the run of
    beats still below -1 dB, rounded up to a size of the action table."""
    out = list(beats)
    forward, backward = list(range(len(out))), list(range(len(out) - 1, -1, -1))
    for effect, idx in ((_T.FADE_IN, forward), (_T.FADE_OUT, backward)):
        if not idx or out[idx[0]].gain_db > -config.fade_db:
            continue
        run = 0
        for i in idx:
            if out[i].gain_db < -1.0:
                run += 1
            else:
                break
        n = min((s for s in sorted(SIZE_BEATS.values()) if s >= run), default=run)
        for i in idx[:n]:
            bt = out[i]
            out[i] = Beat(OutBeat(bt.out.beat, effect, edit_start=bt.out.edit_start),
                          bt.gain_db, bt.low_db, bt.high_db, 0, 1.0, bt.confidence,
                          bt.share)  # fmt: skip
    return out


def amount_for(effect: ActionType, beats: list[Beat]) -> ActionAmount:
    """The amount of the action table closest to what ``beats`` measured for ``effect``."""
    if not beats:
        return ActionAmount.NEUTRAL
    measured = {
        _T.GAIN: float(np.median([b.gain_db for b in beats])),
        _T.EQ_LOW: float(np.median([b.low_db for b in beats])) * 1.25,
        _T.EQ_HIGH: float(np.median([b.high_db for b in beats])) * 1.25,
        _T.PITCH_UP: float(np.median([b.semitones for b in beats])),
        _T.PITCH_DOWN: float(np.median([b.semitones for b in beats])),
        _T.SPEED_UP: float(np.median([b.ratio for b in beats])),
        _T.SPEED_DOWN: float(np.median([b.ratio for b in beats])),
        _T.FADE_IN: 80.0,
        _T.FADE_OUT: 80.0,
    }.get(effect)
    options = valid_amounts(effect)
    if measured is None:
        return ActionAmount.NEUTRAL if ActionAmount.NEUTRAL in options else options[0]
    return min(options, key=lambda a: abs(value(effect, a) - measured))
