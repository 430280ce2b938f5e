"""The spectral front end against the libraries whose definitions it reproduces.

librosa 0.11 for the STFT, mel power, power-to-dB and onset strength (what the beat tracker,
the features, the alignment and the evaluation were computed with before the front end), and
torchaudio for the supervised model's HTK log-mel (what its checkpoints were trained on).
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from editorbot.audio import spectral
from editorbot.datasets.testsignals import drum_pattern
from editorbot.errors import ParameterError

SR = 22050


@pytest.fixture(scope="module")
def y() -> np.ndarray:
    track = drum_pattern(tempo_bpm=111.0, duration_sec=6.0, sr=SR, bass=True)
    return track.y.astype(np.float32)


@pytest.mark.parametrize(("n_fft", "hop_length"), [(2048, 512), (4096, 1024), (1000, 300)])
def test_power_spectrogram_is_librosa_stft_squared(
    y: np.ndarray, n_fft: int, hop_length: int
) -> None:
    S = spectral.power_spectrogram(y, n_fft=n_fft, hop_length=hop_length)
    S_ref = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length)) ** 2
    assert S.shape == S_ref.shape and S.dtype == np.float32
    # Two float32 FFTs (torch's and numpy's) of the same frames: roundoff of about 1e-7 of the
    # loudest bin; a shifted frame or another window moves bins by a good part of it.
    np.testing.assert_allclose(S, S_ref, rtol=0, atol=1e-6 * float(S_ref.max()))
    M = spectral.magnitude_spectrogram(y, n_fft=n_fft, hop_length=hop_length)
    np.testing.assert_allclose(M, np.sqrt(S), rtol=1e-5, atol=1e-6 * float(M.max()))


@pytest.mark.parametrize(("n_fft", "hop_length"), [(2048, 1024), (1001, 501), (2048, 700)])
@pytest.mark.parametrize(("center", "pad_end"), [(False, False), (True, True)])
def test_frame_placements_are_scipy_stft(
    y: np.ndarray, n_fft: int, hop_length: int, center: bool, pad_end: bool
) -> None:
    """Frames from the start to the last whole one (the export chain's bands), and centred
    frames padded to reach the end (the aligner's spectral distance): scipy.signal.stft's
    ``boundary=None, padded=False`` and its defaults, which divide by the window's sum."""
    from scipy.signal import stft

    y = y[: len(y) - 333]  # no whole number of hops: the end padding has something to do
    boundary = "zeros" if center else None
    _, _, Z = stft(y, nperseg=n_fft, noverlap=n_fft - hop_length, boundary=boundary,
                   padded=pad_end)  # fmt: skip
    expected = np.abs(Z) ** 2
    frames = {"n_fft": n_fft, "hop_length": hop_length, "center": center, "pad_end": pad_end}
    S = spectral.power_spectrogram(y, **frames) / spectral.window_sum(n_fft) ** 2
    assert S.shape == expected.shape
    assert spectral.n_frames(len(y), **frames) == expected.shape[1]
    # Two float32 FFTs of the same frames: roundoff of about 1e-7 of the loudest bin; a frame
    # one sample off or a missing last frame moves bins by a good part of it.
    np.testing.assert_allclose(S, expected, rtol=0, atol=1e-6 * float(expected.max()))
    M = spectral.magnitude_spectrogram(y, **frames) / spectral.window_sum(n_fft)
    np.testing.assert_allclose(M, np.abs(Z), rtol=0, atol=1e-6 * float(np.abs(Z).max()))


def test_frames_need_a_whole_frame_without_centring() -> None:
    with pytest.raises(ParameterError, match="shorter than one frame"):
        spectral.power_spectrogram(np.zeros(100, np.float32), n_fft=256, hop_length=64,
                                   center=False)  # fmt: skip


@pytest.mark.parametrize("ref", [1.0, None])
def test_power_to_db_is_librosa_power_to_db(y: np.ndarray, ref: float | None) -> None:
    S = spectral.mel_power(y, sr=SR, n_fft=2048, hop_length=512, n_mels=64)
    got = spectral.power_to_db(S, ref=ref, top_db=80.0)
    expected = librosa.power_to_db(S, ref=np.max if ref is None else ref, top_db=80.0)
    assert got.dtype == S.dtype
    # [dB] float32 logs of the same powers: a few ulps of values up to 100 dB (8e-6 dB each).
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    as_tensor = spectral.power_to_db(torch.from_numpy(S), ref=ref)
    assert torch.equal(as_tensor, torch.from_numpy(got))  # numpy in, numpy out: the same op


@pytest.mark.parametrize(("n_fft", "hop_length"), [(2048, 512), (4096, 1024)])
def test_onset_strength_is_librosas_with_its_centring_delay(
    y: np.ndarray, n_fft: int, hop_length: int
) -> None:
    S_db = spectral.power_to_db(
        spectral.mel_power(y, sr=SR, n_fft=n_fft, hop_length=hop_length, n_mels=64)
    )
    for center, delay in ((False, 1), (True, 1 + n_fft // (2 * hop_length))):
        got = spectral.onset_strength(S_db, delay=delay)
        expected = librosa.onset.onset_strength(
            S=S_db, sr=SR, n_fft=n_fft, hop_length=hop_length, center=center
        )
        # [dB] means of 64 float32 differences, summed in another order: measured 2e-6 dB.
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
        assert np.all(got[:delay] == 0)


def test_htk_log_mel_is_torchaudio_bit_for_bit(y: np.ndarray) -> None:
    """The supervised model's input must not move: its checkpoints were trained on it."""
    import torchaudio

    kwargs = {"sr": SR, "n_fft": 1024, "hop_length": 256, "n_mels": 80, "f_max": 8000.0}
    reference = torchaudio.transforms.MelSpectrogram(
        sample_rate=SR, n_fft=1024, hop_length=256, f_max=8000.0, n_mels=80, power=1.0
    )
    batch = torch.from_numpy(np.stack([y, y[::-1].copy()]))
    assert torch.equal(spectral.htk_mel_magnitude(batch, **kwargs), reference(batch))
    assert torch.equal(spectral.htk_mel_magnitude(batch[0], **kwargs), reference(batch[0]))


def test_mel_power_does_not_depend_on_the_block_size(
    y: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = spectral.mel_power(y, sr=SR, n_fft=1024, hop_length=256, n_mels=64)
    monkeypatch.setattr(spectral, "BLOCK_FRAMES", 7)
    blocked = spectral.mel_power(y, sr=SR, n_fft=1024, hop_length=256, n_mels=64)
    # The frames' FFTs are the same bits; the mel products of 7-row blocks may round
    # differently from 128-row ones (MKL's kernels): float32 roundoff of the loudest band.
    np.testing.assert_allclose(blocked, whole, rtol=0, atol=1e-6 * float(whole.max()))


def test_alignment_features_keep_their_librosa_definitions(y: np.ndarray) -> None:
    """The aligner's frame features were librosa's chroma, MFCC and onset strength."""
    from editorbot.editing.align import AlignConfig, frame_features

    config = AlignConfig()
    got = frame_features(y, sr=SR, config=config)
    S = np.abs(librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length)) ** 2
    chroma = librosa.feature.chroma_stft(S=S, sr=SR, n_fft=config.n_fft, norm=None, tuning=0.0)
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=S, sr=SR, n_mels=64))
    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=13)[1:]
    onset = librosa.onset.onset_strength(S=mel_db, sr=SR)
    onset = np.convolve(onset, np.ones(3) / 3, mode="same")
    onset = onset / max(float(np.percentile(onset, 95)), 1e-6)

    def unit(X: np.ndarray) -> np.ndarray:
        return X / np.maximum(np.linalg.norm(X, axis=0, keepdims=True), 1e-6)

    expected = np.concatenate(
        [
            config.chroma_weight * unit(chroma),
            config.mfcc_weight * unit(mfcc),
            config.onset_weight * np.clip(onset, 0.0, 2.0)[None],
        ]
    )
    assert got.shape == expected.shape
    # Unit-norm columns and an onset scaled to its 95th percentile: values of order 1, float32
    # roundoff through two FFT libraries and a DCT by matrix vs by FFT (measured 2e-6 on music).
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
