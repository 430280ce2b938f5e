"""How beat features are computed: :class:`FeatureConfig`, read by every feature module.

Its own module so that :mod:`editorbot.audio.features` (the columns),
:mod:`editorbot.audio.frame_features` (the DSP) and :mod:`editorbot.audio.magnitude_stats`
(the compiled per-frame loop) all import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from editorbot.errors import ParameterError

N_MFCC = 13
"""[coefficients] MFCCs per frame (the column names fix it)."""


@dataclass(frozen=True)
class FeatureConfig:
    """How beat features are computed (defaults = librosa's, at the 22,050 Hz analysis rate)."""

    n_fft: int = 2048
    """[samples] STFT window and FFT length; also the RMS and zero-crossing frame length."""
    hop_length: int = 512
    """[samples] STFT hop (23.2 ms at 22,050 Hz)."""
    n_mels: int = 128
    """[bands] mel bands behind the onset strength and the MFCCs."""
    n_mfcc: int = N_MFCC
    """[coefficients] MFCCs per frame; fixed at 13 by the column names."""
    contrast_fmin: float = 200.0
    """[Hz] upper edge of the lowest spectral-contrast band; the others are octaves above it."""
    contrast_quantile: float = 0.02
    """[fraction] share of a band's bins averaged into its peak and its valley."""
    rolloff_percent: float = 0.85
    """[fraction] share of spectral magnitude below the rolloff frequency."""
    top_db: float = 80.0
    """[dB] dynamic range kept by the dB conversions (as librosa.power_to_db)."""
    delta_width: int = 9
    """[frames] Savitzky-Golay window of the frame-level ΔMFCC (odd, >= 3)."""
    tuning: float = 0.0
    """[fraction of a chroma bin] tuning offset from A440 (fixed, not estimated per track)."""
    use_stems: bool = False
    """[flag] compute the 12 stem columns from demucs stems; off = zeros."""

    def __post_init__(self) -> None:
        if self.n_fft < 16 or not 1 <= self.hop_length <= self.n_fft:
            raise ParameterError(
                "FeatureConfig: need n_fft >= 16 and 1 <= hop_length <= n_fft, "
                f"got n_fft={self.n_fft}, hop_length={self.hop_length}"
            )
        if self.delta_width < 3 or self.delta_width % 2 == 0:
            raise ParameterError(
                f"FeatureConfig: delta_width must be odd and >= 3, got {self.delta_width}"
            )
        if self.n_mfcc != N_MFCC or self.n_mels < N_MFCC:
            raise ParameterError(
                f"FeatureConfig: n_mfcc must be {N_MFCC} (the column names) and n_mels >= it, "
                f"got n_mfcc={self.n_mfcc}, n_mels={self.n_mels}"
            )
