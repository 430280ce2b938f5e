"""The 121 beat features: frame features from one shared STFT, pooled between beats.

Skeleton (names, config, signature); the implementation follows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

FEATURE_VERSION = "1"
"""Bumped whenever feature code changes; part of the feature-cache key."""

STEM_NAMES: tuple[str, ...] = ("drums", "bass", "other", "vocals")
_PITCH_CLASSES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")

FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "basic_spectral": ("onset", "rms", "centroid", "zcr"),
    "extended_spectral": ("rolloff", "bandwidth", "flatness"),
    "spectral_contrast": tuple(f"contrast_{i}" for i in range(7)),
    "mfcc": tuple(f"mfcc_{i}" for i in range(13)) + tuple(f"mfcc_delta_{i}" for i in range(13)),
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
FEATURE_GROUPS["stem"] = tuple(
    f"stem_{s}_{q}" for s in STEM_NAMES for q in ("rms", "centroid", "energy_ratio")
)
FEATURE_NAMES: tuple[str, ...] = tuple(n for g in FEATURE_GROUPS.values() for n in g)
N_FEATURES = len(FEATURE_NAMES)
assert N_FEATURES == 121, N_FEATURES
FEATURE_INDEX: dict[str, int] = {n: i for i, n in enumerate(FEATURE_NAMES)}
"""Column index of each feature name."""


def feature_index(name: str) -> int:
    """Column of feature ``name`` in the (n_beats, 121) table."""
    return FEATURE_INDEX[name]


def group_slice(group: str) -> slice:
    """Columns of ``group`` (contiguous) in the (n_beats, 121) table."""
    names = FEATURE_GROUPS[group]
    start = FEATURE_INDEX[names[0]]
    return slice(start, start + len(names))


@dataclass(frozen=True)
class FeatureConfig:
    """How beat features are computed."""

    n_fft: int = 2048
    """[samples] STFT window and FFT length at the analysis rate."""
    hop_length: int = 512
    """[samples] STFT hop."""
    n_mels: int = 128
    """[bins] mel bands for the onset strength and the MFCCs."""
    n_mfcc: int = 13
    """[coefficients] MFCCs kept (the column names assume 13)."""
    n_chroma: int = 12
    """[pitch classes] chroma bins (the column names assume 12)."""
    n_bands: int = 6
    """[bands] spectral-contrast octave bands (7 columns = n_bands + 1)."""
    rolloff_percent: float = 0.85
    """[fraction] spectral rolloff energy fraction."""
    use_stems: bool = False
    """[flag] compute the 12 stem columns (needs demucs weights); off = zeros."""


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
    """The (n_beats, 121) float32 feature table of one track. Implementation in progress."""
    raise NotImplementedError
