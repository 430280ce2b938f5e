"""Global raw↔edit alignment: which raw beats the edit plays, in which order, under which variant.

Raw beats are compared with the edit through frame features (chroma, MFCC shape, onset strength)
sampled at a few points inside each raw beat; variants model the effects that move audio in time
or pitch (time-stretch by each speed ratio of the action table, chroma rolled by each pitch step,
the beat played backwards). The segmental DP with jumps in :mod:`editorbot.editing.align_dp` then
finds the cheapest explanation of the whole edit, so cuts of minutes, loops, reorders and jumps
back all cost the same single jump penalty, never a local search window.

Method: DTW with jumps (Fremerey et al., ISMIR 2010,
https://ismir2010.ismir.net/proceedings/ismir2010-50.pdf) over chroma/MFCC features (Müller,
"Fundamentals of Music Processing", §3.1 and §4.3, https://www.audiolabs-erlangen.de/fau/professor/mueller/bookFMP).

Shape:
    features: [shape=(F, T)]; beat_times: [shape=(N,)] seconds of the raw track's beats.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from editorbot.audio import spectral
from editorbot.audio.filterbanks import chroma_filterbank, dct_matrix, mel_filterbank
from editorbot.editing.actions import ActionType, amount_value, valid_amounts
from editorbot.editing.align_dp import Unit, jump_dp
from editorbot.errors import DatasetError

logger = logging.getLogger(__name__)

_N_MELS = 64
"""[bands] mel bands behind the MFCCs and the onset strength."""
_N_MFCC = 13
"""[coefficients] MFCCs computed (c0 is then dropped: 12 shape coefficients)."""
_ONSET_DELAY = 3
"""[frames] onset-strength delay, librosa's ``center=True`` at n_fft 2048, hop 512."""


@dataclass(frozen=True)
class AlignConfig:
    """How the edit is aligned to the raw track."""

    n_fft: int = 4096
    """[samples] STFT window at the analysis rate: 4 hops, so a frame's features change little
    when the edit's frame grid is out of phase with the raw's by up to half a hop."""
    hop_length: int = 1024
    """[samples] STFT hop; 46 ms at 22,050 Hz, about 10 frames per beat at 120 BPM."""
    points_per_beat: int = 6
    """[points] feature samples compared inside each raw beat."""
    chroma_weight: float = 1.0
    """[weight] chroma term of the frame distance (key-shift variants roll it)."""
    mfcc_weight: float = 1.0
    """[weight] MFCC-shape term (timbre; level-invariant because c0 is dropped)."""
    onset_weight: float = 0.3
    """[weight] onset-strength term (rhythm; pins the beat boundaries)."""
    jump_penalty: float = 6.0
    """[cost] starting a unit that does not continue the previous one (a wrong beat costs ~10)."""
    jump_distance_penalty: float = 0.02
    """[cost per beat] jump cost growing with the distance jumped: of two equally good readings
    of repeated music, the nearer jump wins (64 beats cost 1.3, a fifth of a jump)."""
    duration_penalty: float = 1.0
    """[cost per frame] a unit's length rounded away from its variant's exact length (a
    wrong stretch ratio then pays for the frame it drifts on every beat, see ``jump_dp``)."""
    switch_penalty: float = 0.6
    """[cost] changing variant while moving on to the next raw beat (an effect boundary)."""
    variant_penalty: float = 0.05
    """[cost per frame] prior against variants other than 'as is' (a 5% stretch of a beat moves
    it by under a frame, so without it the tie would go either way)."""
    unrelated_ratio: float = 0.75
    """[fraction] path cost per frame above this share of a random pairing's: unrelated audio."""
    max_edit_ratio: float = 8.0
    """[×] longest edit the language can make, as a multiple of the raw length (LOOP ×4 of all,
    slowed to ×0.67, then repeated); longer edits are refused."""


@dataclass(frozen=True)
class Variant:
    """How a raw beat is played in the edit."""

    type: ActionType
    """[type] KEEP for as-is, else the effect type the variant models."""
    value: float
    """[unit of the type] speed ratio, semitones, or 0."""
    rate: float = 1.0
    """[×] raw frames per edit frame (speed ratio; 1 for everything else)."""
    shift: int = 0
    """[semitones] chroma roll."""
    reverse: bool = False
    """[flag] the beat is played backwards and the next unit is the previous raw beat."""
    source: str = "dry"
    """[name] raw features compared: 'dry', or the raw track through a mid-table reverb or
    overdrive ('reverb', 'distortion'), whose smearing and clipping the dry features miss."""


@dataclass(frozen=True)
class Alignment:
    """The edit explained as raw beats under variants."""

    units: list[Unit]
    """[units] in edit order."""
    variants: tuple[Variant, ...]
    """[variants] indexed by ``Unit.variant``."""
    frame_sec: float
    """[s] one edit frame."""
    random_cost: float
    """[cost per frame] median distance of a random raw/edit frame pair (confidence scale)."""

    def confidence(self, unit: Unit) -> float:
        """[0, 1] how much better than a random pairing this unit matches."""
        per_frame = unit.cost / max(1, unit.end_frame - unit.start_frame)
        return float(np.clip(1.0 - per_frame / max(self.random_cost, 1e-9), 0.0, 1.0))


def build_variants() -> tuple[Variant, ...]:
    """Plain, every speed ratio, every pitch step (read from the action table), reversed."""
    variants = [Variant(ActionType.KEEP, 0.0)]
    for t in (ActionType.SPEED_UP, ActionType.SPEED_DOWN):
        variants += [Variant(t, r, rate=r) for r in _values(t) if abs(r - 1.0) > 1e-6]
    for t in (ActionType.PITCH_UP, ActionType.PITCH_DOWN):
        steps = sorted({round(v) for v in _values(t)} - {0})
        variants += [Variant(t, float(s), shift=s % 12) for s in steps]
    variants.append(Variant(ActionType.REVERSE, 0.0, reverse=True))
    variants.append(Variant(ActionType.REVERB, _mid(ActionType.REVERB), source="reverb"))
    variants.append(
        Variant(ActionType.DISTORTION, _mid(ActionType.DISTORTION), source="distortion")
    )
    return tuple(variants)


def _mid(type: ActionType) -> float:
    """The middle value of a type's amounts (the wet variants' representative)."""
    values = _values(type)
    return values[len(values) // 2]


def _sources(y: np.ndarray, *, sr: int, config: AlignConfig) -> dict[str, np.ndarray]:
    """Raw features dry, through a mid reverb, and through a mid overdrive. [shape=(F, T)] each."""
    from scipy.signal import lfilter

    from editorbot.editing import dsp

    S = _power_spectrogram(y, config)
    # A reverb smears each frame's power into later frames with an exponential decay: power
    # falls 60 dB in RT60, i.e. by 10^(-6 · hop / (sr · RT60)) per frame. Far cheaper than
    # convolving the whole track with a room response, and all the features can see.
    decay = 10.0 ** (-6.0 * config.hop_length / (sr * _mid(ActionType.REVERB)))
    S_reverb = S + 0.25 * (1.0 - decay) * lfilter([1.0], [1.0, -decay], S, axis=1)
    x = y[None].astype(np.float32)
    S_dist = _power_spectrogram(dsp.overdrive(x, drive_db=_mid(ActionType.DISTORTION))[0], config)
    return {
        "dry": _features(S, sr=sr, config=config),
        "reverb": _features(S_reverb, sr=sr, config=config),
        "distortion": _features(S_dist, sr=sr, config=config),
    }


def _power_spectrogram(y: np.ndarray, config: AlignConfig) -> np.ndarray:
    return spectral.power_spectrogram(y, n_fft=config.n_fft, hop_length=config.hop_length)


def _values(type: ActionType) -> list[float]:
    return [amount_value(type, a) for a in valid_amounts(type)]


def frame_features(y: np.ndarray, *, sr: int, config: AlignConfig) -> np.ndarray:
    """Chroma, MFCC shape and onset strength per frame, scaled so one matmul gives distances.

    Args:
        y: [shape=(L,)] mono audio at the analysis rate.
        sr: [Hz] its rate.
        config: STFT settings and term weights.

    Returns:
        [shape=(F, T)] with F = 12 + 12 + 1.
    """
    return _features(_power_spectrogram(y, config), sr=sr, config=config)


def _features(S: np.ndarray, *, sr: int, config: AlignConfig) -> np.ndarray:
    """Frame features of a power spectrogram [shape=(1 + n_fft/2, T)]."""
    # tuning=0: raw and edit are compared with each other, so estimating it buys nothing.
    chroma = chroma_filterbank(sr=sr, n_fft=config.n_fft, tuning=0.0) @ S
    mel_db = spectral.power_to_db(mel_filterbank(sr=sr, n_fft=config.n_fft, n_mels=_N_MELS) @ S)
    mfcc = (dct_matrix(_N_MFCC, _N_MELS) @ mel_db)[1:]  # c0 (level) dropped
    # delayed as librosa's centred onset strength at its default n_fft 2048 / hop 512 (3 frames)
    onset = spectral.onset_strength(mel_db, delay=_ONSET_DELAY)
    onset = np.convolve(onset, np.ones(3) / 3, mode="same")  # less sensitive to frame phase
    onset = onset / max(float(np.percentile(onset, 95)), 1e-6)
    return np.concatenate(
        [
            config.chroma_weight * _unit_columns(chroma),
            config.mfcc_weight * _unit_columns(mfcc),
            config.onset_weight * np.clip(onset, 0.0, 2.0)[None],
        ]
    ).astype(np.float32)


def _unit_columns(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=0, keepdims=True), 1e-6)


def align(
    y_raw: np.ndarray,
    y_edit: np.ndarray,
    *,
    sr: int,
    beat_times: np.ndarray,
    config: AlignConfig | None = None,
    name: str = "<pair>",
) -> Alignment:
    """Explain the edit as a sequence of raw beats under variants.

    Args:
        y_raw: [shape=(L,)] mono raw track at the analysis rate.
        y_edit: [shape=(L,)] mono edit at the same rate.
        sr: [Hz] analysis rate.
        beat_times: [shape=(N,)] raw beat onsets in seconds.
        config: alignment settings.
        name: the pair, named in errors.

    Returns:
        The alignment.

    Raises:
        DatasetError: the edit is longer than the language can make, or unrelated to the raw.
    """
    config = config or AlignConfig()
    if len(y_edit) > config.max_edit_ratio * len(y_raw):
        raise DatasetError(
            f"{name}: the edit is {len(y_edit) / len(y_raw):.1f}× as long as the raw track; the "
            f"edit language makes at most {config.max_edit_ratio:.0f}×; check the pairing"
        )
    sources = _sources(y_raw, sr=sr, config=config)
    R = sources["dry"]
    E = frame_features(y_edit, sr=sr, config=config)
    variants = build_variants()
    beat_frames = _beat_frames(beat_times, sr=sr, hop_length=config.hop_length, T=R.shape[1])
    cost, dur = unit_costs(
        sources, E, beat_frames, variants, config.points_per_beat, config.variant_penalty
    )
    reverse = np.array([v.reverse for v in variants])
    units = jump_dp(
        cost,
        dur,
        reverse_variants=reverse,
        jump_penalty=config.jump_penalty,
        switch_penalty=config.switch_penalty,
        jump_distance_penalty=config.jump_distance_penalty,
        duration_penalty=config.duration_penalty,
    )
    alignment = Alignment(
        units,
        variants,
        config.hop_length / sr,
        _random_cost(R, E),
    )
    _check_related(alignment, config, name)
    return alignment


def _beat_frames(beat_times: np.ndarray, *, sr: int, hop_length: int, T: int) -> np.ndarray:
    """[shape=(N + 1,)] fractional frame boundaries; beat 0 starts at 0, the last ends at T."""
    # [s] * [samples/s] / [samples/frame] = frames
    frames = np.asarray(beat_times, dtype=np.float64) * sr / hop_length
    frames[0] = 0.0
    return np.append(frames, float(T))


def unit_costs(
    sources: dict[str, np.ndarray],
    E: np.ndarray,
    beat_frames: np.ndarray,
    variants: tuple[Variant, ...],
    P: int,
    variant_penalty: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cost of starting each raw beat under each variant at each edit frame.

    Returns:
        cost [shape=(T, V, N)] float32 summed over the unit's frames, and dur [shape=(V, N)].
    """
    F, T = E.shape
    N = len(beat_frames) - 1
    R = sources["dry"]
    lengths = np.diff(beat_frames)
    pos = (np.arange(P) + 0.5) / P  # [fraction of the beat] sample points
    raw_idx = np.clip(
        np.round(beat_frames[:-1, None] + pos * lengths[:, None] - 0.5), 0, R.shape[1] - 1
    )
    pts = {k: S[:, raw_idx.astype(np.int64)] for k, S in sources.items()}  # [F, N, P] each
    max_dur = int(np.ceil(lengths.max() / min(v.rate for v in variants))) + 2
    E_pad = np.concatenate([E, np.zeros((F, max_dur), dtype=E.dtype)], axis=1)
    e_sq = (E_pad**2).sum(axis=0)
    cost = np.empty((T, len(variants), N), dtype=np.float32)
    dur = np.empty((len(variants), N))
    plain = _point_distances(E_pad, e_sq, pts["dry"])
    for v, var in enumerate(variants):
        if var.source != "dry":
            dist = _point_distances(E_pad, e_sq, pts[var.source])
        elif var.shift:
            dist = _point_distances(E_pad, e_sq, _rolled(pts["dry"], var.shift))
        else:
            dist = plain
        dur[v] = lengths / var.rate
        order = pos[::-1] if var.reverse else pos
        edit_off = np.round(order[None, :] * dur[v][:, None] - 0.5).astype(np.int64)  # [N, P]
        t_idx = np.arange(T)[:, None, None] + edit_off[None]  # [T, N, P]
        p_idx = np.arange(P)[None, None, :]
        n_idx = np.arange(N)[None, :, None]
        cost[:, v] = dist[t_idx, n_idx, p_idx].mean(axis=2) * dur[v][None]
        if v > 0:
            cost[:, v] += variant_penalty * dur[v][None]
    return cost, dur


def _rolled(pts: np.ndarray, shift: int) -> np.ndarray:
    """Raw points as if pitch-shifted up ``shift`` semitones (chroma rows rolled)."""
    out = pts.copy()
    out[:12] = np.roll(pts[:12], shift, axis=0)
    return out


def _point_distances(E_pad: np.ndarray, e_sq: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Squared distance of every edit frame to every raw sample point. [shape=(T_pad, N, P)]."""
    F, N, P = pts.shape
    flat = pts.reshape(F, N * P)
    d = e_sq[:, None] + (flat**2).sum(axis=0)[None] - 2.0 * (E_pad.T @ flat)
    return np.maximum(d, 0.0).reshape(-1, N, P)


def _random_cost(R: np.ndarray, E: np.ndarray) -> float:
    """Median squared distance of raw/edit frame pairs drawn at random (fixed seed)."""
    rng = np.random.default_rng(0)
    i = rng.integers(0, R.shape[1], 2000)
    j = rng.integers(0, E.shape[1], 2000)
    return float(np.median(((R[:, i] - E[:, j]) ** 2).sum(axis=0)))


def _check_related(alignment: Alignment, config: AlignConfig, name: str) -> None:
    frames = sum(u.end_frame - u.start_frame for u in alignment.units)
    per_frame = sum(u.cost for u in alignment.units) / max(frames, 1)
    if per_frame > config.unrelated_ratio * alignment.random_cost:
        raise DatasetError(
            f"{name}: the edit does not match the raw track (alignment cost {per_frame:.2f} per "
            f"frame vs {alignment.random_cost:.2f} for random frames); check that the files pair up"
        )
