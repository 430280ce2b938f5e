"""Stems: local HTDemucs weights (a tiny random model saved like demucs's), separation, cache."""

from __future__ import annotations

import itertools
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from demucs.htdemucs import HTDemucs

from editorbot.audio.features import (
    FEATURE_GROUPS,
    STEM_NAMES,
    FeatureConfig,
    beat_features,
    feature_index,
    group_slice,
)
from editorbot.audio.io import analysis_signal, load_audio, write_audio
from editorbot.audio.stems import DEMUCS_DIR_ENV, load_separator, separate_stems
from editorbot.errors import CheckpointError, ParameterError

SIGNATURE = "tiny0001"  # a demucs-style model signature: the .th file's stem


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like demucs's pretrained repo: <sig>.th plus a bag <name>.yaml."""
    torch.manual_seed(0)
    # No transformer (t_layers=0) and 2 layers: separation of a few seconds in about a second.
    model = HTDemucs(
        sources=list(STEM_NAMES), channels=8, depth=2, t_layers=0, nfft=1024, segment=2
    )
    args, kwargs = model._init_args_kwargs
    package = {"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": model.state_dict()}
    folder = tmp_path_factory.mktemp("demucs")
    torch.save(package, folder / f"{SIGNATURE}.th")
    (folder / "tinybag.yaml").write_text(f"models: ['{SIGNATURE}']\n")
    return folder


@pytest.fixture(scope="module")
def track(tmp_path_factory: pytest.TempPathFactory):
    """A 3 s stereo 44.1 kHz file: a kick-like pulse in the left channel, a chord in both."""
    sr = 44100
    t = np.arange(3 * sr) / sr
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-(t % 0.5) * 20)
    y = np.stack([chord + 0.5 * kick, chord]).astype(np.float32)
    path = write_audio(tmp_path_factory.mktemp("audio") / "mix.wav", y, sr=sr)
    return load_audio(path, check_duration=False)


def test_separates_from_a_local_folder_and_caches(weights_dir: Path, track, tmp_path: Path) -> None:
    model = load_separator(weights_dir, name=SIGNATURE)
    y = analysis_signal(track)
    stems = separate_stems(track, model=model, cache_dir=tmp_path)
    assert sorted(stems) == sorted(STEM_NAMES)
    for name, stem in stems.items():
        assert stem.shape == y.shape and stem.dtype == np.float32, name
        assert np.isfinite(stem).all() and np.abs(stem).max() > 0, name
    cached = list(tmp_path.glob("*.npz"))
    assert len(cached) == 1
    # The second call must read the cache, not separate again: plant known stems in the cache
    # file and expect exactly them back.
    planted = {k: np.full_like(v, i + 1) for i, (k, v) in enumerate(stems.items())}
    np.savez(cached[0], **planted)
    again = separate_stems(track, model=model, cache_dir=tmp_path)
    for k in STEM_NAMES:
        np.testing.assert_array_equal(again[k], planted[k])


def test_bag_yaml_and_environment_variable(weights_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv(DEMUCS_DIR_ENV, str(weights_dir))
    model = load_separator(name="tinybag")  # htdemucs's layout: a yaml naming .th signatures
    assert list(model.sources) == list(STEM_NAMES)
    assert load_separator(weights_dir / f"{SIGNATURE}.th").samplerate == 44100


def test_missing_weights_name_the_folder_and_the_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(DEMUCS_DIR_ENV, raising=False)
    with pytest.raises(CheckpointError, match=DEMUCS_DIR_ENV):
        load_separator()
    with pytest.raises(CheckpointError, match=r"nowhere: demucs weights folder not found"):
        load_separator(tmp_path / "nowhere")
    with pytest.raises(
        CheckpointError, match=r"cannot load demucs model 'htdemucs'.*htdemucs\.yaml"
    ):
        load_separator(tmp_path)  # an empty folder: nothing is downloaded


def test_stem_columns(weights_dir: Path, track) -> None:
    y = analysis_signal(track)
    sr = 22050
    beat_times = np.arange(0.0, 2.9, 0.5)
    stems = separate_stems(track, model=load_separator(weights_dir, name=SIGNATURE))
    kwargs = dict(sr=sr, beat_times=beat_times, tempo_bpm=120.0, downbeat_phase=0)
    on = beat_features(y, config=FeatureConfig(use_stems=True), stems=stems, **kwargs)
    off = beat_features(y, **kwargs)
    cols = group_slice("stem")
    assert not off[:, cols].any()  # stems off: the 12 stem columns are exactly zero
    np.testing.assert_array_equal(on[:, : cols.start], off[:, : cols.start])
    ratios = on[:, [feature_index(f"stem_{s}_energy_ratio") for s in STEM_NAMES]]
    # Shares of the stems' total energy: sum to 1 up to float32 rounding.
    np.testing.assert_allclose(ratios.sum(axis=1), 1.0, atol=1e-5)
    # Stem rms is librosa's rms of that stem, averaged over each beat's frames (float32 vs
    # float64 sums: 1e-5 relative).
    rms = librosa.feature.rms(y=stems["drums"])[0]
    bounds = np.append(librosa.time_to_frames(beat_times, sr=sr), rms.size)
    expected = [rms[a:b].mean() for a, b in itertools.pairwise(bounds)]
    np.testing.assert_allclose(on[:, feature_index("stem_drums_rms")], expected, rtol=1e-5)
    assert len(FEATURE_GROUPS["stem"]) == 12


def test_stems_must_match_the_config(weights_dir: Path, track) -> None:
    y = analysis_signal(track)
    kwargs = dict(sr=22050, beat_times=np.arange(0.0, 2.9, 0.5), tempo_bpm=120.0, downbeat_phase=0)
    with pytest.raises(ParameterError, match="use_stems=True but stems were not given"):
        beat_features(y, config=FeatureConfig(use_stems=True), **kwargs)
    with pytest.raises(ParameterError, match="stems must be"):
        beat_features(y, config=FeatureConfig(use_stems=True), stems={"drums": y}, **kwargs)
