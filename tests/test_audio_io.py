"""Audio I/O: every kind of bad input gets one AudioLoadError naming the file and the fix; good
files of any format, rate and channel count load, resample and round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from editorbot.audio.io import (
    Audio,
    AudioConfig,
    analysis_signal,
    load_audio,
    resample,
    to_mono,
    write_audio,
)
from editorbot.errors import AudioLoadError, ParameterError

SR = 22050


def _sine(freq_hz: float, duration_sec: float, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(duration_sec * sr)) / sr
    y = 0.5 * np.sin(2 * np.pi * freq_hz * t).astype(np.float32)
    return np.stack([y * (c + 1) / channels for c in range(channels)])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioLoadError, match=r"nope\.wav: no such file"):
        load_audio(tmp_path / "nope.wav")


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(AudioLoadError, match="is a folder"):
        load_audio(tmp_path)


def test_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are my notes, not a recording\n" * 50)
    with pytest.raises(AudioLoadError, match=r"notes\.wav: not readable as audio"):
        load_audio(path)


def test_corrupt_bytes(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.flac"
    path.write_bytes(b"fLaC" + np.random.default_rng(0).bytes(4000))
    with pytest.raises(AudioLoadError, match=r"corrupt\.flac: (not readable|corrupt)"):
        load_audio(path)


def test_truncated(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    sf.write(path, _sine(440, 6.0).T, SR, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still declares 6 s
    with pytest.raises(
        AudioLoadError, match=r"cut\.wav: truncated: the header declares 6\.00 s but only 3\.00 s"
    ):
        load_audio(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(AudioLoadError, match=r"empty\.wav: empty file \(0 bytes\)"):
        load_audio(path)


def test_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "header_only.wav"
    sf.write(path, np.zeros((0, 1), dtype=np.float32), SR)
    with pytest.raises(AudioLoadError, match=r"header_only\.wav: contains no audio samples"):
        load_audio(path)


def test_silent(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "silent.wav", np.zeros((2, 6 * SR), np.float32), sr=SR)
    with pytest.raises(AudioLoadError, match=r"silent\.wav: all silent"):
        load_audio(path)
    # Stems may legitimately be silent (a song without vocals): the check can be turned off.
    assert load_audio(path, check_silence=False).n_channels == 2


def test_too_short_says_how_long(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "short.wav", _sine(440, 1.5), sr=SR)
    with pytest.raises(AudioLoadError, match=r"short\.wav: 1\.5 s of audio, need at least 4 s"):
        load_audio(path)
    assert load_audio(path, check_duration=False).duration_sec == pytest.approx(1.5)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite(tmp_path: Path, bad: float) -> None:
    y = _sine(440, 5.0)
    y[0, 1000:1010] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, y.T, SR, subtype="FLOAT")  # FLOAT WAV stores NaN/inf as they are
    with pytest.raises(AudioLoadError, match=r"nan\.wav: 10 NaN/inf samples"):
        load_audio(path)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_formats_rates_channels(tmp_path: Path, ext: str) -> None:
    y = _sine(440, 4.5, sr=44100, channels=2)
    path = write_audio(tmp_path / f"x.{ext}", y, sr=44100)
    audio = load_audio(path)
    assert (audio.sr, audio.n_channels, audio.n_samples) == (44100, 2, y.shape[1])
    # WAV is written as float32: bit-exact. FLAC (24-bit) and Vorbis are lossy; 0.05 is far
    # below the 0.5 amplitude and far above Vorbis's error on a pure tone.
    tolerance = 0.0 if ext == "wav" else 0.05
    np.testing.assert_allclose(audio.y, y, atol=tolerance)


def test_analysis_signal_is_mono_at_analysis_rate() -> None:
    y = _sine(1000, 4.0, sr=48000, channels=2)  # channels 0.25 and 0.5 amplitude
    mono = analysis_signal(Audio(y=y, sr=48000), config=AudioConfig())
    assert mono.shape == (4 * 22050,)
    # The spectral peak stays at 1000 Hz (bins are 0.25 Hz wide over 4 s).
    spectrum = np.abs(np.fft.rfft(mono))
    assert np.fft.rfftfreq(len(mono), 1 / 22050)[spectrum.argmax()] == pytest.approx(1000, abs=0.5)
    # Mean of 0.25 and 0.5 amplitude = 0.375; 1 % allows the resampler's passband ripple.
    assert np.abs(mono[1000:-1000]).max() == pytest.approx(0.375, rel=0.01)


def test_to_mono_and_resample_identity() -> None:
    y = _sine(300, 0.5, channels=3)
    np.testing.assert_allclose(to_mono(y), y.mean(axis=0), rtol=1e-6)
    assert resample(y, orig_sr=SR, target_sr=SR) is not None
    np.testing.assert_array_equal(resample(y, orig_sr=SR, target_sr=SR), y)
    with pytest.raises(ParameterError, match="must be positive"):
        resample(y, orig_sr=0, target_sr=SR)


def test_write_audio_refuses_to_overwrite_input(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "in.wav", _sine(440, 4.1), sr=SR)
    before = path.read_bytes()
    with pytest.raises(ParameterError, match="refusing to overwrite an input file"):
        write_audio(path, _sine(220, 4.1), sr=SR, protect=(path,))
    assert path.read_bytes() == before
    with pytest.raises(ParameterError, match=r"write \.wav, \.flac or \.ogg"):
        write_audio(tmp_path / "out.mp4", _sine(440, 1.0), sr=SR)
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_truncated_flac(tmp_path: Path) -> None:
    path = tmp_path / "cut.flac"
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, size=(1, 6 * SR)).astype(np.float32)
    write_audio(path, noise, sr=SR)  # noise: FLAC cannot compress it, so half the bytes = 3 s
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioLoadError, match=r"cut\.flac: corrupt or truncated audio"):
        load_audio(path)
