"""Beat features: names, shapes, agreement with librosa's definitions, and bad input."""

from __future__ import annotations

import itertools
import subprocess
import sys

import librosa
import numpy as np
import pytest

from editorbot.audio.features import (
    FEATURE_GROUPS,
    FEATURE_NAMES,
    FRAME_FEATURE_NAMES,
    FeatureConfig,
    beat_features,
    feature_index,
    group_slice,
)
from editorbot.audio.io import analysis_signal, load_audio, write_audio
from editorbot.errors import ParameterError

SR = 22050
TEMPO_BPM = 120.0


def music_like(*, seconds: float, seed: int = 0, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """Chords + bass + drums + noise in 4 sections of different keys, timbres and levels.

    Returns:
        [shape=(L,)] float32 signal and [s] its beat times (120 BPM, with a slight drift).
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    y = np.zeros(n)
    beat_times = (
        np.cumsum(np.full(int(seconds * 2) + 1, 0.5) + rng.normal(0, 0.004, int(seconds * 2) + 1))
        - 0.5
        + 0.05
    )
    beat_times = beat_times[beat_times < seconds - 0.05]
    sections = [(0, 57, 1.0, 0.3), (5, 60, 0.5, 0.8), (7, 55, 1.5, 0.2), (2, 62, 0.8, 0.6)]
    section_len = n // len(sections)
    for s, (root, bass_midi, bright, noise) in enumerate(sections):
        seg = slice(s * section_len, (s + 1) * section_len if s < len(sections) - 1 else n)
        ts = t[seg]
        chord = [root + 60, root + 64, root + 67]
        for k, m in enumerate(chord):
            f0 = librosa.midi_to_hz(m)
            for h in range(1, 6):
                y[seg] += 0.08 * bright ** (h - 1) / h * np.sin(2 * np.pi * h * f0 * ts + k)
        bass_f = librosa.midi_to_hz(bass_midi - 24 + (np.floor(ts * 2) % 4 == 3) * 5)
        y[seg] += 0.25 * np.sin(2 * np.pi * np.cumsum(bass_f) / sr)
        y[seg] += noise * 0.02 * rng.standard_normal(ts.size)
    for i, b in enumerate(beat_times):
        start = int(b * sr)
        env = np.exp(-np.arange(min(4000, n - start)) / 600)
        kick = np.sin(2 * np.pi * 55 * np.arange(env.size) / sr) * env
        y[start : start + env.size] += (0.9 if i % 4 == 0 else 0.5) * kick
        if i % 2 == 1:  # snare / hat: noise bursts on off-beats
            y[start : start + env.size] += 0.3 * rng.standard_normal(env.size) * env**2
    y *= 0.5 / np.abs(y).max()
    return y.astype(np.float32), beat_times


def librosa_frame_features(y: np.ndarray, sr: int) -> np.ndarray:
    """The 52 frame features, one librosa call per feature (each recomputing its STFT).

    Returns:
        [shape=(T, 52)] in FRAME_FEATURE_NAMES order.
    """
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)
    columns = [
        librosa.onset.onset_strength(y=y, sr=sr)[None],
        librosa.feature.rms(y=y),
        librosa.feature.spectral_centroid(y=y, sr=sr),
        librosa.feature.zero_crossing_rate(y),
        librosa.feature.spectral_rolloff(y=y, sr=sr),
        librosa.feature.spectral_bandwidth(y=y, sr=sr),
        librosa.feature.spectral_flatness(y=y),
        librosa.feature.spectral_contrast(y=y, sr=sr),
        mfcc,
        librosa.feature.delta(mfcc),
        librosa.feature.chroma_stft(y=y, sr=sr, tuning=0.0),
    ]
    return np.concatenate(columns, axis=0).T


def pool_like_editorbot(frames: np.ndarray, beat_times: np.ndarray, sr: int) -> np.ndarray:
    """Mean of each beat's frames (beat i: its frame up to beat i+1's; edges to the ends)."""
    T = frames.shape[0]
    bounds = librosa.time_to_frames(beat_times, sr=sr)
    bounds[0] = 0
    bounds = np.append(bounds, T)
    return np.stack([frames[a:b].mean(axis=0) for a, b in itertools.pairwise(bounds)])


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """24 s of music-like audio, written to a WAV file and read back as the pipeline does."""
    y, beat_times = music_like(seconds=24.0)
    path = write_audio(tmp_path_factory.mktemp("audio") / "track.wav", y[None], sr=SR)
    audio = load_audio(path)
    np.testing.assert_array_equal(audio.y[0], y)  # float WAV: bit-exact round trip
    return analysis_signal(audio), beat_times


def test_names_and_groups() -> None:
    sizes = {g: len(names) for g, names in FEATURE_GROUPS.items()}
    assert sizes == {
        "basic_spectral": 4,
        "extended_spectral": 3,
        "spectral_contrast": 7,
        "mfcc": 26,
        "chroma": 12,
        "rhythmic": 5,
        "delta": 52,
        "stem": 12,
    }
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 121
    assert FEATURE_NAMES[group_slice("chroma")] == FEATURE_GROUPS["chroma"]
    assert FEATURE_NAMES[: len(FRAME_FEATURE_NAMES)] == FRAME_FEATURE_NAMES
    assert FEATURE_NAMES[feature_index("delta_onset")] == "delta_onset"


def test_frame_columns_agree_with_librosa(track: tuple[np.ndarray, np.ndarray]) -> None:
    y, beat_times = track
    ours = beat_features(y, sr=SR, beat_times=beat_times, tempo_bpm=TEMPO_BPM, downbeat_phase=0)
    ref = pool_like_editorbot(librosa_frame_features(y, SR), beat_times, SR)
    assert ours.shape == (len(beat_times), 121) and ours.dtype == np.float32
    assert np.isfinite(ours).all()
    n = len(FRAME_FEATURE_NAMES)
    # 0.99: the definitions are the same, so what differs is float32 vs float64 arithmetic and
    # rounding at discrete steps (rolloff bin, chroma/contrast argmax); a different definition
    # (another window, band edge, frame alignment or normalisation) drops well below 0.99.
    for j, name in enumerate(FRAME_FEATURE_NAMES):
        r = np.corrcoef(ours[:, j], ref[:, j])[0, 1]
        assert r >= 0.99, f"{name}: correlation {r:.4f} with librosa"
    # Same definition, same scale: values, not only their shape over time, agree (1 %
    # of each column's spread: float32 STFT vs librosa's float64 pipeline).
    spread = ref[:, :n].std(axis=0) + 1e-9
    err = np.abs(ours[:, :n] - ref[:, :n]).max(axis=0) / spread
    worst = FRAME_FEATURE_NAMES[int(err.argmax())]
    assert err.max() < 0.05, f"{worst}: max error {err.max():.3f} of its spread"


def test_rhythmic_columns_are_exact() -> None:
    y, _ = music_like(seconds=8.0)
    beat_times = np.array([0.1, 0.6, 1.1, 1.62, 2.1, 2.58, 3.1, 3.6, 4.2, 4.7])
    out = beat_features(y, sr=SR, beat_times=beat_times, tempo_bpm=120.0, downbeat_phase=1)
    rhythmic = out[:, group_slice("rhythmic")]
    phase = np.array([3, 0, 1, 2, 3, 0, 1, 2, 3, 0]) / 4  # beat 1 is the first downbeat
    ibi = np.array([0.5, 0.5, 0.52, 0.48, 0.48, 0.52, 0.5, 0.6, 0.5, 0.5])  # last repeats
    expected = np.stack(
        [
            phase,
            np.sin(2 * np.pi * phase),
            np.cos(2 * np.pi * phase),
            60.0 / ibi / 120.0 - 1.0,
            np.concatenate([[1.0], ibi[1:] / ibi[:-1]]),
        ],
        axis=1,
    )
    # Exact definitions; the only error left is float32 storage (~1e-7 relative).
    np.testing.assert_allclose(rhythmic, expected, rtol=1e-6, atol=1e-6)
    frames = out[:, : len(FRAME_FEATURE_NAMES)]
    deltas = out[:, group_slice("delta")]
    np.testing.assert_array_equal(deltas[0], 0.0)
    # Deltas are taken before the table is rounded to float32: they agree with differences of
    # the rounded values to a few float32 ulps of each column's magnitude.
    ulps = 4 * np.finfo(np.float32).eps * np.abs(frames).max(axis=0)
    assert (np.abs(deltas[1:] - np.diff(frames, axis=0)) <= ulps).all()


def test_silence_and_awkward_grids_stay_finite() -> None:
    y, _ = music_like(seconds=8.0)
    y[: 4 * SR] = 0.0  # digital silence: every ratio and log must be guarded
    # beats closer than one hop (23 ms), and one past the end of the audio
    beat_times = np.array([0.0, 0.5, 0.51, 1.0, 5.0, 7.9, 8.5])
    out = beat_features(y, sr=SR, beat_times=beat_times, tempo_bpm=120.0, downbeat_phase=0)
    assert out.shape == (7, 121) and np.isfinite(out).all()
    assert out[0, feature_index("rms")] == 0.0 and out[-1, feature_index("rms")] > 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"beat_times": np.array([1.0])}, "need >= 2 strictly increasing beat times, got 1"),
        ({"beat_times": np.array([1.0, 0.5, 2.0])}, "strictly increasing"),
        ({"tempo_bpm": 0.0}, "tempo_bpm must be positive, got 0.0"),
        ({"y": np.full(SR, np.nan, dtype=np.float32)}, "finite mono signal"),
        ({"y": np.zeros((2, SR), dtype=np.float32)}, r"shape \(2, 22050\)"),
    ],
)
def test_bad_input_is_one_clear_error(change: dict, message: str) -> None:
    kwargs = {
        "y": np.zeros(4 * SR, dtype=np.float32),
        "beat_times": np.arange(0.0, 4.0, 0.5),
        "tempo_bpm": 120.0,
    }
    kwargs.update(change)
    with pytest.raises(ParameterError, match=message):
        beat_features(sr=SR, downbeat_phase=0, **kwargs)


def test_config_is_checked() -> None:
    with pytest.raises(ParameterError, match="delta_width must be odd"):
        FeatureConfig(delta_width=4)
    with pytest.raises(ParameterError, match="n_mfcc must be 13"):
        FeatureConfig(n_mfcc=20)


def test_magnitude_stats_match_librosa_frame_by_frame(track: tuple[np.ndarray, np.ndarray]) -> None:
    """The compiled per-frame loop against librosa on the same STFT, frame by frame."""
    import torch

    from editorbot.audio.magnitude_stats import magnitude_stats

    y, _ = track
    y = y[: 4 * SR].copy()
    y[SR : SR + SR // 2] = 0.0  # digital silence: the floors (amin, empty bands) must match
    config = FeatureConfig()
    X = librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length)  # complex64 (F, T)
    S = np.abs(X)
    P = np.empty(X.T.shape, np.float32)
    stats = magnitude_stats(torch.from_numpy(X.T.copy()), sr=SR, config=config, P=P)
    # Power and magnitude moments: float32 arithmetic on the same STFT (1e-5 relative).
    np.testing.assert_allclose(P, S.T**2, rtol=1e-5, atol=1e-12)
    freq = librosa.fft_frequencies(sr=SR, n_fft=config.n_fft)
    ref_centroid = librosa.feature.spectral_centroid(S=S, sr=SR)[0]
    centroid = stats.moments[:, 1] / np.maximum(stats.moments[:, 0], 1e-30)
    np.testing.assert_allclose(centroid, ref_centroid, rtol=1e-4, atol=1e-3)
    contrast = librosa.power_to_db(stats.peak) - librosa.power_to_db(stats.valley)
    # Contrast selects the same bins as librosa's sort (exact); what is left is float32 vs
    # float64 rounding of the band means, far below 1e-3 dB.
    ref_contrast = librosa.feature.spectral_contrast(S=S, sr=SR).T
    np.testing.assert_allclose(contrast, ref_contrast, atol=1e-3)
    # Flatness: a float64 sum of logs of 16-bin products vs librosa's float32 logs: 1e-5
    # relative is float32 rounding over 1025 bins; any other definition is off by far more.
    ref_flatness = librosa.feature.spectral_flatness(S=S)[0]
    np.testing.assert_allclose(stats.flatness, ref_flatness, rtol=1e-4, atol=1e-7)
    # Rolloff: the same float32 running sum, so the same bin except where the running sum
    # lands within a rounding error of the threshold (at most one frame in a thousand).
    ref_rolloff = librosa.feature.spectral_rolloff(S=S, sr=SR)[0]
    assert np.mean(freq[stats.rolloff_bin] != ref_rolloff) <= 1e-3


def test_magnitude_stats_of_blocks_equal_those_of_the_whole(
    track: tuple[np.ndarray, np.ndarray],
) -> None:
    """Every statistic is per frame: blocks written into whole-track rows change no bit."""
    import torch

    from editorbot.audio.magnitude_stats import empty_stats, magnitude_stats

    y, _ = track
    config = FeatureConfig()
    X = torch.from_numpy(librosa.stft(y[: 6 * SR], n_fft=config.n_fft).T.copy())  # (T, F)
    T, F = X.shape
    whole = magnitude_stats(X, sr=SR, config=config, P=np.empty((T, F), np.float32))
    pieces = empty_stats(T)
    P_block = np.empty((50, F), np.float32)  # 50 does not divide T: a short last block
    for start in range(0, T, 50):
        block = X[start : start + 50]
        P = P_block[: len(block)]
        magnitude_stats(block, sr=SR, config=config, P=P, out=pieces, start=start)
    for name, a, b in zip(whole._fields, whole, pieces, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_frame_features_do_not_depend_on_the_block_size(
    track: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The STFT in blocks is torch.stft's, bit for bit, whatever the block size."""
    import torch

    from editorbot.audio import frame_features, spectral

    y, _ = track
    config = FeatureConfig()
    signal = y[: 10 * SR + 123]  # 431 frames (a prime): no block size divides it
    window = torch.hann_window(config.n_fft)
    reference = torch.stft(
        torch.from_numpy(signal),
        config.n_fft,
        config.hop_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    ).T
    whole_track, _ = frame_features.frame_features(signal[None], sr=SR, config=config)
    spread = whole_track.std(dim=0) + 1e-6
    for block in (1, 7, 100, 1000):
        monkeypatch.setattr(spectral, "BLOCK_FRAMES", block)
        stft = spectral.stft_blocks(signal, n_fft=config.n_fft, hop_length=config.hop_length)
        starts, blocks = zip(*((start, X.clone()) for start, X in stft), strict=True)
        assert max(len(X) for X in blocks) - min(len(X) for X in blocks) <= 1
        assert list(starts) == np.cumsum([0] + [len(X) for X in blocks[:-1]]).tolist()
        # Each frame's FFT is computed alone, so the frames are the same bits.
        assert torch.equal(torch.cat(blocks), reference), f"block of {block} frames"
        frames, _ = frame_features.frame_features(signal[None], sr=SR, config=config)
        # Block products (mel, chroma) may round differently for 1-2 row blocks (MKL's
        # small-matrix kernels): float32 rounding, about 1e-5 of a column's spread (MFCC
        # values of -500 against a spread of a few units); a misplaced frame or a lost
        # overlap moves values by a good part of the spread.
        error = ((frames - whole_track).abs().amax(dim=0) / spread).max().item()
        assert error < 1e-4, f"block of {block} frames: {error:.2e} of a column's spread"


def test_feature_path_does_not_import_librosa() -> None:
    """``import librosa`` costs seconds of JIT setup that ``editorbot edit`` cannot afford."""
    code = (
        "import sys, numpy as np\n"
        "from editorbot.audio.features import beat_features\n"
        "y = np.random.default_rng(0).standard_normal(22050 * 3).astype(np.float32)\n"
        "beat_features(y, sr=22050, beat_times=np.arange(0.1, 2.9, 0.5), tempo_bpm=120.0,"
        " downbeat_phase=0)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'librosa'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize("length", [2048, 22050, 512 * 40, 512 * 40 + 1])
@pytest.mark.parametrize("hop_length", [512, 384])  # 384: frames are not whole hop blocks
def test_rms_and_zcr_match_librosa_frame_by_frame(length: int, hop_length: int) -> None:
    """Both the compiled hop-block path and the cumulative-sum path, at the signal's edges."""
    from editorbot.audio.frame_features import rms_and_zcr

    rng = np.random.default_rng(length)
    y = rng.standard_normal(length).astype(np.float32)
    y[::7] = 0.0  # exact zeros count as positive: a different convention changes the count
    rms, zcr = rms_and_zcr(y[None], n_fft=2048, hop_length=hop_length)
    # RMS: float64 sums of float32 squares vs librosa's float32 means: 1e-5 relative.
    ref_rms = librosa.feature.rms(y=y, frame_length=2048, hop_length=hop_length)[0]
    np.testing.assert_allclose(rms[0, :, 0].numpy(), ref_rms, rtol=1e-5)
    # Zero crossings are counts: equal exactly (a count off by one is 1 / 2048 ~ 5e-4).
    ref_zcr = librosa.feature.zero_crossing_rate(y, frame_length=2048, hop_length=hop_length)[0]
    np.testing.assert_allclose(zcr[0, :, 0].numpy(), ref_zcr, rtol=0, atol=1e-7)
