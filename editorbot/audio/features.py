"""The 121 beat features: frame features from one shared STFT, pooled between beats.

Every frame feature follows librosa's definition of the same name (``librosa.onset``,
``librosa.feature``; https://librosa.org/doc/0.11.0/feature.html), but all of them come from one
STFT of the track (and of each stem), with the mel and chroma filterbanks as cached matrices
(:mod:`editorbot.audio.frame_features`); librosa itself is not imported. Frame features
are then averaged over the frames of each beat with one segment sum (no loop over beats).

The rhythmic columns come from the grid alone; the delta columns are beat-to-beat differences
of the first 52 (0 for beat 0); per stem, ``rms`` and ``centroid`` [Hz] are the mix's
definitions applied to the stem and ``energy_ratio`` is the stem's share of the four stems'
mean-square energy in the beat (the 12 stem columns are 0 when stems are off).

Beat convention (as in :mod:`editorbot.editing.actions`): beat ``i`` covers
``[beat_times[i], beat_times[i + 1])``; frames before beat 0 belong to beat 0 and frames after
the last beat to the last beat. A frame belongs to the beat its start frame index says
(:func:`editorbot.audio.filterbanks.time_to_frames`, as ``librosa.time_to_frames``). Bars
start on beats ``b`` with ``(b - downbeat_phase) % 4 == 0``.

Shape:
    y: [shape=(L,)] mono analysis signal; stems: 4 × [shape=(L,)].
    Frame features: [shape=(T, F)] with T = 1 + L // hop_length frames.
    Output: [shape=(n_beats, 121)] float32, columns :data:`FEATURE_NAMES`.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from editorbot.audio.beats import BEATS_PER_BAR
from editorbot.audio.feature_config import N_MFCC, FeatureConfig
from editorbot.audio.filterbanks import time_to_frames
from editorbot.audio.frame_features import N_FRAME_FEATURES, frame_features
from editorbot.audio.magnitude_stats import N_CONTRAST_BANDS
from editorbot.errors import ParameterError

logger = logging.getLogger(__name__)

FEATURE_VERSION = "2"
"""Bumped whenever feature code changes; part of the feature-cache key."""

STEM_NAMES: tuple[str, ...] = ("drums", "bass", "other", "vocals")
_PITCH_CLASSES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")

FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "basic_spectral": ("onset", "rms", "centroid", "zcr"),
    "extended_spectral": ("rolloff", "bandwidth", "flatness"),
    "spectral_contrast": tuple(f"contrast_{i}" for i in range(N_CONTRAST_BANDS + 1)),
    "mfcc": tuple(f"mfcc_{i}" for i in range(N_MFCC))
    + tuple(f"mfcc_delta_{i}" for i in range(N_MFCC)),
    "chroma": tuple(f"chroma_{p}" for p in _PITCH_CLASSES),
}
FRAME_FEATURE_NAMES: tuple[str, ...] = tuple(n for g in FEATURE_GROUPS.values() for n in g)
"""The 52 columns pooled from frame features (the ones the delta group differentiates)."""
FEATURE_GROUPS["rhythmic"] = (
    "beat_phase",
    "beat_phase_sin",
    "beat_phase_cos",
    "tempo_deviation",
    "ibi_ratio",
)
FEATURE_GROUPS["delta"] = tuple(f"delta_{n}" for n in FRAME_FEATURE_NAMES)
_STEM_QUANTITIES = ("rms", "centroid", "energy_ratio")
FEATURE_GROUPS["stem"] = tuple(f"stem_{s}_{q}" for s in STEM_NAMES for q in _STEM_QUANTITIES)
FEATURE_NAMES: tuple[str, ...] = tuple(n for g in FEATURE_GROUPS.values() for n in g)
N_FEATURES = len(FEATURE_NAMES)
FEATURE_INDEX: dict[str, int] = {n: i for i, n in enumerate(FEATURE_NAMES)}
"""Column index of each feature name."""
assert N_FEATURES == 121 and len(FRAME_FEATURE_NAMES) == N_FRAME_FEATURES, FEATURE_NAMES


def feature_index(name: str) -> int:
    """Column of feature ``name`` in the (n_beats, 121) table."""
    return FEATURE_INDEX[name]


def group_slice(group: str) -> slice:
    """Columns of ``group`` (contiguous) in the (n_beats, 121) table."""
    names = FEATURE_GROUPS[group]
    start = FEATURE_INDEX[names[0]]
    return slice(start, start + len(names))


def beat_features(
    y: np.ndarray,
    *,
    sr: int,
    beat_times: np.ndarray,
    tempo_bpm: float,
    downbeat_phase: int,
    config: FeatureConfig | None = None,
    stems: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """The beat-feature table of one track.

    Args:
        y: [shape=(L,)] mono analysis signal.
        sr: [Hz] its sample rate.
        beat_times: [s] [shape=(n_beats,)] increasing beat onsets covering the track.
        tempo_bpm: [beats/min] the track's global tempo.
        downbeat_phase: index (0-3) of the first beat that starts a bar.
        config: feature settings; defaults to ``FeatureConfig()``.
        stems: ``None``, or ``{'drums', 'bass', 'other', 'vocals'}`` -> [shape=(L,)] mono stem
            at ``sr``; required exactly when ``config.use_stems`` is set.

    Returns:
        [shape=(n_beats, 121)] float32, columns :data:`FEATURE_NAMES`, all finite.

    Raises:
        ParameterError: non-finite or empty signal, fewer than 2 beats, decreasing beats,
            non-positive tempo, or stems that do not match ``config.use_stems`` or ``y``.
    """
    config = config or FeatureConfig()
    y, beat_times = _check_inputs(y, beat_times, tempo_bpm, config, stems)
    (L,) = y.shape
    signals = np.stack([y, *(stems[s] for s in STEM_NAMES)]) if stems is not None else y[None]
    with _one_thread():
        frames, stem_frames = frame_features(signals, sr=sr, config=config)
        T = frames.shape[0]
        start, stop = _beat_frames(beat_times, sr=sr, hop_length=config.hop_length, n_frames=T)
        pooled = _pool(frames, start, stop)
        stem_cols = (
            _stem_columns(_pool(stem_frames, start, stop))
            if stem_frames is not None
            else np.zeros((len(beat_times), len(FEATURE_GROUPS["stem"])))
        )
    rhythmic = _rhythmic(beat_times, tempo_bpm=tempo_bpm, downbeat_phase=downbeat_phase)
    delta = np.diff(pooled, axis=0, prepend=pooled[:1])
    out = np.concatenate([pooled, rhythmic, delta, stem_cols], axis=1).astype(np.float32)
    assert out.shape == (len(beat_times), N_FEATURES), out.shape
    assert np.isfinite(out).all(), "beat features must be finite"
    return out


class _one_thread:
    """Run torch on one intra-op thread (the caller's setting is restored on exit)."""

    def __enter__(self) -> None:
        self._n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._n)


def _check_inputs(
    y: np.ndarray,
    beat_times: np.ndarray,
    tempo_bpm: float,
    config: FeatureConfig,
    stems: dict[str, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    y = np.ascontiguousarray(y, dtype=np.float32)
    beat_times = np.asarray(beat_times, dtype=np.float64)
    if y.ndim != 1 or y.size < config.n_fft or not np.isfinite(y).all():
        raise ParameterError(
            f"beat_features: y must be a finite mono signal of at least n_fft={config.n_fft} "
            f"samples, got shape {y.shape}; pass editorbot.audio.io.analysis_signal(audio)"
        )
    if beat_times.ndim != 1 or beat_times.size < 2 or np.any(np.diff(beat_times) <= 0):
        raise ParameterError(
            f"beat_features: need >= 2 strictly increasing beat times, got {beat_times.size} "
            f"(shape {beat_times.shape}); check the beat grid"
        )
    if not np.isfinite(tempo_bpm) or tempo_bpm <= 0:
        raise ParameterError(f"beat_features: tempo_bpm must be positive, got {tempo_bpm}")
    if config.use_stems != (stems is not None):
        raise ParameterError(
            f"beat_features: config.use_stems={config.use_stems} but stems "
            f"{'were' if stems is not None else 'were not'} given; separate them with "
            "editorbot.audio.stems.separate_stems, or set use_stems to match"
        )
    if stems is not None:
        bad = {k: np.shape(v) for k, v in stems.items() if np.shape(v) != y.shape}
        if set(stems) != set(STEM_NAMES) or bad:
            raise ParameterError(
                f"beat_features: stems must be {STEM_NAMES} each of shape {y.shape}, "
                f"got keys {sorted(stems)}, mismatched shapes {bad}"
            )
    return y, beat_times


# ------------------------------------------------------------------------ beat pooling ---


def _beat_frames(
    beat_times: np.ndarray, *, sr: int, hop_length: int, n_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """[start, stop) frame range of each beat; never empty, covers all frames."""
    frames = time_to_frames(beat_times, sr=sr, hop_length=hop_length)
    start = np.clip(frames, 0, n_frames - 1)
    start[0] = 0  # frames before the first beat belong to it
    stop = np.append(start[1:], n_frames)  # frames after the last beat belong to it
    return start, np.maximum(stop, start + 1)  # beats closer than a hop get their start frame


def _pool(frames: torch.Tensor, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Mean of [shape=(T, F)] frames over each [start, stop) range -> [shape=(n_beats, F)].

    The ranges are those of :func:`_beat_frames`: ``start`` non-decreasing, ``stop[i]`` the
    next range's start (or ``start[i] + 1`` where two starts coincide, and T for the last),
    which is exactly what ``np.add.reduceat`` sums over (a repeated index: that one frame).
    """
    sums = np.add.reduceat(frames.numpy(), start, axis=0, dtype=np.float64)
    return sums / (stop - start)[:, None]


def _stem_columns(pooled: np.ndarray) -> np.ndarray:
    """Per stem (rms, centroid, energy ratio) from pooled (rms, centroid, mean square) columns."""
    n_beats = pooled.shape[0]
    per_stem = pooled.reshape(n_beats, len(STEM_NAMES), 3)
    energy = per_stem[..., 2]
    total = energy.sum(axis=1, keepdims=True)
    ratio = np.divide(energy, total, out=np.zeros_like(energy), where=total > 0)
    return np.stack([per_stem[..., 0], per_stem[..., 1], ratio], axis=-1).reshape(n_beats, -1)


def _rhythmic(beat_times: np.ndarray, *, tempo_bpm: float, downbeat_phase: int) -> np.ndarray:
    """Beat phase in the bar (and its sin, cos), tempo deviation, inter-beat-interval ratio.

    Returns:
        [shape=(n_beats, 5)]: phase in [0, 1) (0 on downbeats); local tempo / global tempo - 1
        with the local tempo from the interval to the next beat (the last beat reuses the
        interval before it); that interval / the previous one (1 for beat 0).
    """
    n_beats = len(beat_times)
    phase = ((np.arange(n_beats) - downbeat_phase) % BEATS_PER_BAR) / BEATS_PER_BAR
    ibi = np.diff(beat_times)
    ibi = np.append(ibi, ibi[-1])  # [s] interval from each beat to the next
    # [s/min] / [s/beat] = local beats per minute
    tempo_deviation = (60.0 / ibi) / tempo_bpm - 1.0
    ibi_ratio = np.concatenate([[1.0], ibi[1:] / ibi[:-1]])
    angle = 2 * np.pi * phase
    return np.stack([phase, np.sin(angle), np.cos(angle), tempo_deviation, ibi_ratio], axis=1)
