"""The numpy filterbanks and grids equal librosa's, array for array."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.fft

from editorbot.audio.filterbanks import (
    chroma_filterbank,
    dct_matrix,
    fft_frequencies,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
    time_to_frames,
)

# The feature settings in use (22,050 Hz, 2048-point FFT, 128 mels) and others that move the
# filter edges against the FFT bins (other rates, FFT sizes and band counts).
SETTINGS = [(22050, 2048, 128), (22050, 1024, 64), (44100, 2048, 128), (16000, 512, 40)]


@pytest.mark.parametrize(("sr", "n_fft", "n_mels"), SETTINGS)
def test_mel_filterbank_equals_librosa(sr: int, n_fft: int, n_mels: int) -> None:
    ours = mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    assert ours.dtype == ref.dtype == np.float32 and ours.shape == ref.shape
    # The same float64 operations in the same order, cast once to float32: equal bit for bit
    # (a rounding difference would show up as 1 float32 ulp, about 6e-8 relative).
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("tuning", [0.0, 0.13, -0.4])
@pytest.mark.parametrize(("sr", "n_fft", "n_mels"), SETTINGS)
def test_chroma_filterbank_equals_librosa(sr: int, n_fft: int, n_mels: int, tuning: float) -> None:
    ours = chroma_filterbank(sr=sr, n_fft=n_fft, tuning=tuning)
    ref = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning)
    assert ours.dtype == ref.dtype == np.float32 and ours.shape == ref.shape == (12, n_fft // 2 + 1)
    # Same float64 operations, cast once: bit for bit (see the mel test).
    np.testing.assert_array_equal(ours, ref)


def test_mel_scale_round_trips_and_matches_librosa() -> None:
    hz = np.array([0.0, 20.0, 440.0, 999.9, 1000.0, 1000.1, 4000.0, 11025.0])
    np.testing.assert_array_equal(hz_to_mel(hz), librosa.hz_to_mel(hz))
    mels = np.linspace(0.0, 45.0, 91)
    np.testing.assert_array_equal(mel_to_hz(mels), librosa.mel_to_hz(mels))
    # exp(log(x)) loses a few float64 ulps: 1e-12 relative.
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, rtol=1e-12)


def test_fft_frequencies_and_time_to_frames_equal_librosa() -> None:
    np.testing.assert_array_equal(
        fft_frequencies(sr=22050, n_fft=2048), librosa.fft_frequencies(sr=22050, n_fft=2048)
    )
    # Times on and next to frame boundaries (512 / 22050 s), and 0.
    boundary = 512 / 22050
    times = np.concatenate([[0.0], np.arange(1, 50) * boundary, np.arange(1, 50) * boundary - 1e-9])
    times = np.concatenate([times, np.random.default_rng(0).uniform(0.0, 300.0, 500)])
    ours = time_to_frames(times, sr=22050, hop_length=512)
    np.testing.assert_array_equal(ours, librosa.time_to_frames(times, sr=22050, hop_length=512))
    assert ours.dtype.kind == "i"


def test_dct_matrix_is_scipy_orthonormal_dct() -> None:
    ours = dct_matrix(13, 128)
    ref = scipy.fft.dct(np.eye(128), type=2, norm="ortho", axis=0)[:13]
    # cos() of the direct formula vs scipy's FFT-based transform: float64 rounding, 1e-14.
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-14)
    full = dct_matrix(128, 128)
    np.testing.assert_allclose(full @ full.T, np.eye(128), atol=1e-12)  # orthonormal
