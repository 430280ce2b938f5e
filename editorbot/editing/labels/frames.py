"""Frame features of the global labeller: what the path matches and what the levels are read from.

Matching uses chroma and MFCC shape (c1-c12), each scaled to unit length per frame, so a gain,
a fade or a mastering chain's overall level changes nothing and a shelf changes little; the
levels (mel bands in dB) are kept beside them for the effects. Pitch shifts are modelled by
rolling the raw chroma (:func:`rolled`).

Shape:
    features: [shape=(F, T)] with F = 12 + 12; levels: [shape=(n_mels, T)] dB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from editorbot.audio import spectral
from editorbot.audio.filterbanks import chroma_filterbank, dct_matrix, mel_filterbank
from editorbot.editing.labels.config import PathConfig

N_CHROMA = 12
_N_MFCC = 13


@dataclass(frozen=True)
class Frames:
    """One signal's frames."""

    features: np.ndarray
    """[shape=(24, T)] float32 matching vectors (chroma then MFCC shape, each unit length,
    weighted)."""
    levels: np.ndarray
    """[shape=(n_mels, T)] [dB] mel band levels (absolute: ``10 log10`` of the band power)."""
    chroma: np.ndarray
    """[shape=(12, T)] unit-length chroma (unweighted), for pitch-shift tests."""
    hop_sec: float
    """[s] one frame."""


def frames(y: np.ndarray, *, sr: int, hop_length: int, config: PathConfig) -> Frames:
    """The frames of a mono signal at the analysis rate."""
    S = spectral.power_spectrogram(y, n_fft=config.n_fft, hop_length=hop_length)
    chroma = _unit(chroma_filterbank(sr=sr, n_fft=config.n_fft, tuning=0.0) @ S)
    mel = mel_filterbank(sr=sr, n_fft=config.n_fft, n_mels=config.n_mels) @ S
    levels = 10.0 * np.log10(np.maximum(mel, 1e-10))
    mfcc = _unit((dct_matrix(_N_MFCC, config.n_mels) @ np.maximum(levels, -100.0))[1:])
    features = np.concatenate([config.chroma_weight * chroma, config.mfcc_weight * mfcc])
    return Frames(features.astype(np.float32), levels.astype(np.float32),
                  chroma.astype(np.float32), hop_length / sr)  # fmt: skip


def band_hz(*, sr: int, config: PathConfig) -> np.ndarray:
    """[shape=(n_mels,)] [Hz] centre of each mel band (the weighted mean of its filter)."""
    fb = mel_filterbank(sr=sr, n_fft=config.n_fft, n_mels=config.n_mels)
    hz = np.linspace(0.0, sr / 2, fb.shape[1])
    return (fb @ hz) / np.maximum(fb.sum(axis=1), 1e-12)


def rolled(chroma: np.ndarray, semitones: int) -> np.ndarray:
    """Chroma of the same frames pitch-shifted up ``semitones``."""
    return np.roll(chroma, semitones, axis=0)


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=0, keepdims=True), 1e-6)
