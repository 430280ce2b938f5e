"""Effect detection on aligned beats, by analysis by synthesis.

Once the alignment says which raw beats an edit segment plays, the question is which effect (and
which amount) turns those raw samples into the edit's. Each candidate from the action table is
applied to the raw segment with the renderer's own DSP (:func:`editorbot.editing.dsp.apply_effect`)
and compared with the edit; the candidate with the smallest residual wins, and the residual sets the
confidence. Per beat, a cheap first pass (band levels, level ramp, crest factor) only says whether
the beat was changed and which family of effects it looks like, so the parse can split segments
where the effect changes.

Method: analysis by synthesis (e.g. Bell, Fujisaki, Heinz & Stevens 1961; for audio effects,
Steinmetz & Reiss, "Style transfer of audio effects with differentiable signal processing",
https://arxiv.org/abs/2207.08759, which matches effect parameters by resynthesis).

Shape:
    y: [shape=(C, L)] at the tracks' own rate; segments are sample ranges of the raw and edit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from editorbot.audio import spectral
from editorbot.editing import dsp
from editorbot.editing.actions import ActionAmount, ActionType, valid_amounts
from editorbot.editing.render import RenderConfig, render_segment, segment_margin

logger = logging.getLogger(__name__)

_T = ActionType
LEVEL_EFFECTS = (
    _T.GAIN,
    _T.EQ_LOW,
    _T.EQ_HIGH,
    _T.FADE_IN,
    _T.FADE_OUT,
    _T.DISTORTION,
    _T.REVERB,
)
"""Effects that keep the beat's length and pitch; the per-beat pass can only say 'changed'."""


@dataclass(frozen=True)
class EffectConfig:
    """How effects are detected."""

    changed_db: float = -50.0
    """[dB] residual (edit − raw, relative to raw) above this means the beat was changed (an
    unchanged beat matches to float rounding; a −3 dB high shelf on dull music is near −40)."""
    edge_ms: float = 12.0
    """[ms] ignored at each segment edge, where the renderer crossfades (10 ms) or ramps (5 ms)."""
    keep_margin_db: float = 0.0
    """[dB] how much more exactly than 'unchanged' an effect must explain a segment to be
    chosen. 0 for an edit straight from a renderer; an exported pair raises it (its codec leaves
    a residual on every candidate, so a small win is the codec's, see ``ExportConfig``)."""
    spectral_above_db: float = -15.0
    """[dB] when no candidate's waveform explains the segment to this, candidates are ranked
    by log-spectral distance instead: a phase-vocoded segment whose raw start is 2 ms off the
    editor's leaves about 0 dB for every amount (its frames, and so its phases, start
    elsewhere), while its magnitudes still tell -5 semitones from +7 (benchmarks/RESULTS.md,
    alignment into decision lists)."""


@dataclass(frozen=True)
class EffectGuess:
    """The effect that best explains one edit segment."""

    type: ActionType
    """[type] KEEP when nothing was changed."""
    amount: ActionAmount
    """[amount] the table entry."""
    residual_db: float
    """[dB] remaining difference, relative to the edit's level."""
    margin_db: float
    """[dB] how much worse the runner-up candidate of another type or amount explains it."""
    edit_start: int = 0
    """[samples] where the best candidate lines up with the edit (the given start unless a
    search was asked for)."""


def residual_db(x: np.ndarray, ref: np.ndarray, edge: int) -> float:
    """[dB] energy of ``x - ref`` relative to ``ref``, ignoring ``edge`` samples each side."""
    n = min(x.shape[-1], ref.shape[-1])
    lo, hi = min(edge, n // 4), max(n - edge, n - n // 4)
    d = x[..., lo:hi].astype(np.float64) - ref[..., lo:hi]
    e_ref = float(np.sum(ref[..., lo:hi].astype(np.float64) ** 2)) + 1e-12
    return 10.0 * float(np.log10(float(np.sum(d**2)) / e_ref + 1e-12))


def is_changed(raw: np.ndarray, edit: np.ndarray, *, sr: int, config: EffectConfig) -> bool:
    """True if the edit beat differs from the raw beat by more than rounding and seams."""
    edge = int(config.edge_ms * sr / 1000)
    return residual_db(raw, edit, edge) > config.changed_db


def candidates(
    types: tuple[ActionType, ...], *, keep: bool = True
) -> list[tuple[ActionType, ActionAmount]]:
    """Every valid (type, amount) of ``types``, read from the action table, and KEEP (so a
    segment the per-beat pass wrongly thought changed can still come out unchanged)."""
    found = [(t, a) for t in types for a in valid_amounts(t)]
    return [(_T.KEEP, ActionAmount.NEUTRAL), *found] if keep else found


def render_like(
    y_raw: np.ndarray,
    t: ActionType,
    a: ActionAmount,
    *,
    sr: int,
    raw_start: int,
    raw_end: int,
    config: RenderConfig | None = None,
) -> np.ndarray:
    """Raw ``[raw_start, raw_end)`` under ``(t, a)`` exactly as the renderer lays its body
    (:func:`editorbot.editing.render.render_segment` with the same ``RenderConfig``, whose
    context, STFT, reverb and seed the resynthesis must share). [shape=(C, M)]"""
    rc = config or RenderConfig()
    x = render_segment(y_raw, t, a, sr=sr, raw_start=raw_start, raw_end=raw_end, config=rc)
    H = segment_margin(rc, sr)
    return x[:, H : x.shape[1] - H]


def best_effect(
    y_raw: np.ndarray,
    y_edit: np.ndarray,
    *,
    sr: int,
    raw_start: int,
    raw_end: int,
    edit_start: int,
    types: tuple[ActionType, ...],
    config: EffectConfig | None = None,
    keep: bool = True,
    search: int = 0,
) -> EffectGuess:
    """The candidate whose rendering of raw ``[raw_start, raw_end)`` best matches the edit.

    Args:
        y_raw: [shape=(C, L)] raw track.
        y_edit: [shape=(C, L_edit)] edit, same rate and channels.
        sr: [Hz] their rate.
        raw_start: [samples] first raw sample of the segment.
        raw_end: [samples] end of the segment (exclusive).
        edit_start: [samples] where the segment starts in the edit.
        types: effect types to try (all their amounts).
        config: thresholds.
        keep: also try 'unchanged' (KEEP).
        search: [samples] also try starts up to this far either side of ``edit_start``, each
            candidate where it correlates best with the edit (0: exactly at ``edit_start``).

    Returns:
        The best candidate, with its residual, its margin over the runner-up and its start.
    """
    config = config or EffectConfig()
    edge = int(config.edge_ms * sr / 1000)
    scored = []
    for t, a in candidates(types, keep=keep):
        body = render_like(y_raw, t, a, sr=sr, raw_start=raw_start, raw_end=raw_end)
        at = edit_start + (_best_shift(body, y_edit, edit_start, search) if search else 0)
        target = dsp.slice_padded(y_edit, at, at + body.shape[1])
        scored.append((residual_db(body, target, edge), t, a, at, body, target))
    scored.sort(key=lambda s: s[0])
    if scored[0][0] > config.spectral_above_db:
        ranked = sorted(
            ((_spectral_distance(b, x), t, a, at) for _, t, a, at, b, x in scored),
            key=lambda r: r[0],
        )
        res = {(t, a): r for r, t, a, *_ in scored}
        best = ranked[0]
        margin = 10.0 * np.log10(ranked[1][0] / max(best[0], 1e-12)) if len(ranked) > 1 else 60.0
        return EffectGuess(best[1], best[2], res[best[1], best[2]], float(margin), best[3])
    top = _prefer_keep(scored, config.keep_margin_db) if keep else scored[0]
    rest = [r for r, *_ in (x for x in scored if x is not top)]
    margin = max(0.0, min(rest) - top[0]) if rest else 60.0
    return EffectGuess(top[1], top[2], top[0], margin, top[3])


def _prefer_keep(scored: list, margin_db: float) -> tuple:
    """The best-scored candidate, or KEEP where the best beats it by under ``margin_db``."""
    keep = next(s for s in scored if s[1] == _T.KEEP)
    return keep if scored[0][0] > keep[0] - margin_db else scored[0]


def _spectral_distance(x: np.ndarray, ref: np.ndarray) -> float:
    """Mean absolute difference of log STFT magnitudes (mono mixes; 46 ms frames at 44.1 kHz,
    so a few ms of misplacement and the phases do not count) over the shorter length."""
    n = min(x.shape[-1], ref.shape[-1])
    frame = max(1, min(_SPECTRAL_FFT, n))
    hop = frame - frame // 2  # half-overlapping frames, centred, the last reaching the end

    def log_magnitude(z: np.ndarray) -> np.ndarray:
        M = spectral.magnitude_spectrogram(z, n_fft=frame, hop_length=hop, pad_end=True)
        # Per unit amplitude (a sine of amplitude A peaks near A / 2): _FLOOR is on that scale.
        return np.log(M / spectral.window_sum(frame) + _FLOOR)

    a, b = (log_magnitude(z[..., :n].mean(axis=0)) for z in (x, ref))
    return float(np.mean(np.abs(a - b)))


_SPECTRAL_FFT = 2048
"""[samples] frame of the log-spectral distance."""
_FLOOR = 1e-4
"""[amplitude] added to every magnitude before the log (-80 dB): silence is not infinitely
far from near-silence."""


def _best_shift(body: np.ndarray, y_edit: np.ndarray, start: int, search: int) -> int:
    """[samples] shift in ``[-search, search]`` where ``body`` correlates best (normalised)
    with the edit from ``start`` + shift (mono mixes)."""
    from scipy.signal import correlate

    n = body.shape[1]
    ref = body.mean(axis=0).astype(np.float64)
    seg = dsp.slice_padded(y_edit, start - search, start + n + search).mean(axis=0)
    seg = seg.astype(np.float64)
    xc = correlate(seg, ref, mode="valid", method="fft")
    energy = np.maximum(correlate(seg**2, np.ones(n), mode="valid", method="fft"), 1e-12)
    return int(np.argmax(xc / np.sqrt(energy))) - search


def refine_start(
    y_raw: np.ndarray, y_edit: np.ndarray, s: int, e: int, guess: int, hop: int
) -> int:
    """[samples] where raw ``[s, e)`` starts in the edit, by cross-correlation near ``guess``."""
    w = min(e - s, 4096)
    from scipy.signal import correlate

    lo = max(guess - 2 * hop, 0)
    hi = min(guess + 2 * hop + w, y_edit.shape[1])
    if hi - lo <= w:
        return max(0, min(guess, y_edit.shape[1] - 1))
    ref = y_raw[0, s : s + w].astype(np.float64)
    seg = y_edit[0, lo:hi].astype(np.float64)
    xc = correlate(seg, ref, mode="valid", method="fft")
    energy = np.maximum(correlate(seg**2, np.ones(w), mode="valid", method="fft"), 0.0)
    ncc = xc / np.sqrt(np.maximum(energy, 1e-12) * max(float(ref @ ref), 1e-12))
    return lo + int(np.argmax(ncc))


_BAR_STEPS = (4, 8, 16, 32)
"""[beats] how far from a guess an exact copy is looked for: a bar, two, a phrase, two."""


def exact_beats(
    y_raw: np.ndarray,
    y_edit: np.ndarray,
    edges: np.ndarray,
    beat: int,
    guess: int,
    prev: int | None,
    hop: int,
    sr: int,
    config: EffectConfig,
    *,
    path: int | None = None,
) -> list[int]:
    """The raw beats an edit beat plays as is, sample for sample, most likely first; [] if none.

    ``beat`` is the raw beat the alignment names, ``guess`` [samples] where it starts in the
    edit, ``prev`` the raw beat played before it (None at the start), ``hop`` [samples] how far
    the guess may be off, ``path`` the beat the previous sample-checked beats put the
    alignment's path at (its offset to the alignment carried on), tried second.

    Features cannot tell apart beats that sound alike (a chorus bar and its repeat, a beat and
    the next on the same chord), so the DP may name the wrong one; samples can. Tried in order:
    the beat after the previous one (the DP jumped where the edit did not), the unit's beat,
    the previous beat again (a one-beat stutter costs the DP a jump), the beats whole bars to
    either side (the same place in a repeated bar, phrase or two), and whole bars on from or
    back from the previous beat's successor (the edit cut or looped by bars while the DP read
    a similar-sounding section elsewhere, and stays there for as long as it sounds alike).
    Songs repeat beats exactly, so every match is returned and the parse takes whichever its
    reading needs.
    """
    N = len(edges) - 1
    tries = [beat] if prev is None else [prev + 1, beat, prev]
    if path is not None:
        tries.insert(1, path)
    tries += [beat + sign * k for k in _BAR_STEPS for sign in (1, -1)]
    if prev is not None:
        tries += [prev + 1 + sign * k for k in _BAR_STEPS for sign in (1, -1)]
    seen: set[int] = set()
    found = []
    for b in tries:
        if not 0 <= b < N or b in seen:
            continue
        seen.add(b)
        s, e = int(edges[b]), int(edges[b + 1])
        start = refine_start(y_raw, y_edit, s, e, guess, hop)
        edit_seg = y_edit[:, start : start + (e - s)]
        if edit_seg.shape[1] == e - s and not is_changed(
            y_raw[:, s:e], edit_seg, sr=sr, config=config
        ):
            found.append(b)
    return found
