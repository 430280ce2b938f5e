"""Analysis pipeline and feature tables: the Parquet layout and metadata, the content-keyed cache,
precomputed stems, and the refusal to mix tables with and without stems."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from editorbot.audio.analysis import TrackFeatures, analyze
from editorbot.audio.features import FEATURE_NAMES, FEATURE_VERSION, FeatureConfig, group_slice
from editorbot.audio.io import Audio, load_audio, write_audio
from editorbot.datasets.feature_cache import (
    META_KEY,
    ExtractConfig,
    analyze_cached,
    cache_key,
    check_compatible,
    extract_file,
    read_table,
    write_table,
)
from editorbot.datasets.testsignals import drum_pattern
from editorbot.errors import AudioLoadError, DatasetError, ParameterError

SR = 22050


@pytest.fixture(scope="module")
def drums() -> Audio:
    track = drum_pattern(tempo_bpm=120.0, duration_sec=10.0, sr=SR, first_bar_position=1, bass=True)
    return Audio(y=np.stack([track.y, 0.5 * track.y]), sr=SR)  # stereo: meta must say 2


@pytest.fixture(scope="module")
def analysed(drums: Audio) -> TrackFeatures:
    return analyze(drums)


def test_analyze_table_and_meta(analysed: TrackFeatures) -> None:
    n_beats, F = analysed.features.shape
    assert F == 121 and analysed.names == FEATURE_NAMES
    assert n_beats == analysed.grid.n_beats == 20  # 10 s at 120 BPM
    assert analysed.features.dtype == np.float32 and np.isfinite(analysed.features).all()
    assert not analysed.features[:, group_slice("stem")].any()  # stems off: zeros, and says so
    meta = analysed.meta
    assert (meta["sample_rate"], meta["n_channels"], meta["stems"]) == (SR, 2, False)
    assert meta["duration_sec"] == pytest.approx(10.0)
    assert meta["downbeat_phase"] == 3 and meta["tempo"] == pytest.approx(120.0, rel=0.01)
    assert meta["feature_version"] == FEATURE_VERSION


def test_parquet_round_trip(analysed: TrackFeatures, tmp_path: Path) -> None:
    path = write_table(analysed, tmp_path / "t.parquet", key="abc")
    table = pq.read_table(path)
    assert table.column_names == ["beat_index", "beat_time", *FEATURE_NAMES]
    assert META_KEY in table.schema.metadata
    back = read_table(path)
    # Features are stored as float32 and times as float64: exact round trip.
    np.testing.assert_array_equal(back.features, analysed.features)
    np.testing.assert_array_equal(back.grid.beat_times, analysed.grid.beat_times)
    assert back.grid.downbeat_phase == analysed.grid.downbeat_phase
    assert back.meta["cache_key"] == "abc" and back.meta["stems"] is False
    assert not list(tmp_path.glob(".*"))  # atomic write left no temporary file


def test_read_table_refuses_foreign_parquet(tmp_path: Path) -> None:
    import pyarrow as pa

    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "other.parquet")
    with pytest.raises(DatasetError, match=r"other\.parquet: not an editorbot feature table"):
        read_table(tmp_path / "other.parquet")
    (tmp_path / "junk.parquet").write_text("no")
    with pytest.raises(DatasetError, match=r"junk\.parquet: not a readable Parquet file"):
        read_table(tmp_path / "junk.parquet")


def test_cache_key_is_content_and_config(drums: Audio, tmp_path: Path) -> None:
    config = ExtractConfig()
    key = cache_key(drums, config)
    renamed = Audio(y=drums.y.copy(), sr=drums.sr, path=tmp_path / "other_name.wav")
    assert cache_key(renamed, config) == key  # the path is not part of the key
    louder = Audio(y=drums.y * 0.9, sr=drums.sr)
    assert cache_key(louder, config) != key
    other_features = dataclasses.replace(config, features=FeatureConfig(hop_length=256))
    assert cache_key(drums, other_features) != key


def test_cache_hit_skips_analysis(drums: Audio, tmp_path: Path, monkeypatch) -> None:
    first, key, cached = analyze_cached(drums, ExtractConfig(), cache_dir=tmp_path)
    assert not cached and (tmp_path / f"{key}.parquet").exists()

    def _fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cache hit must not re-run the analysis")

    monkeypatch.setattr("editorbot.datasets.feature_cache.analyze", _fail)
    second, key2, cached2 = analyze_cached(drums, ExtractConfig(), cache_dir=tmp_path)
    assert cached2 and key2 == key
    np.testing.assert_array_equal(second.features, first.features)


def _write_stems(drums: Audio, folder: Path) -> None:
    mono = drums.y[0]
    stems = {"drums": mono, "bass": 0.5 * mono, "other": 0 * mono, "vocals": 0 * mono}
    for name, y in stems.items():  # silent stems are legitimate (no vocals)
        write_audio(folder / f"{name}.wav", y[None, :], sr=SR)


def test_stems_from_folder_and_no_silent_mixing(
    drums: Audio, analysed: TrackFeatures, tmp_path: Path
) -> None:
    source = write_audio(tmp_path / "song.wav", drums.y, sr=SR)
    _write_stems(drums, tmp_path / "stems" / "song")
    with_stems = analyze(
        load_audio(source),
        feature_config=FeatureConfig(use_stems=True),
        stems_dir=tmp_path / "stems",
    )
    assert with_stems.has_stems
    stem_cols = dict(zip(FEATURE_NAMES, with_stems.features.T, strict=True))
    assert stem_cols["stem_drums_rms"].mean() > 0
    assert not stem_cols["stem_vocals_rms"].any()  # a silent stem stays silent
    check_compatible([with_stems, with_stems])  # same kind: fine
    with pytest.raises(DatasetError, match=r"has stem features but .* does not"):
        check_compatible([analysed, with_stems], names=["plain.parquet", "stems.parquet"])


def test_stems_missing_or_inconsistent(drums: Audio, tmp_path: Path) -> None:
    source = write_audio(tmp_path / "song.wav", drums.y, sr=SR)
    audio = load_audio(source)
    with pytest.raises(AudioLoadError, match=r"stems/song/drums\.wav: stem missing"):
        analyze(audio, feature_config=FeatureConfig(use_stems=True), stems_dir=tmp_path / "stems")
    with pytest.raises(ParameterError, match="use_stems is on but no stems folder"):
        analyze(audio, feature_config=FeatureConfig(use_stems=True))
    with pytest.raises(ParameterError, match="use_stems is off"):
        analyze(audio, stems_dir=tmp_path)


def test_extract_file_writes_named_table(drums: Audio, tmp_path: Path) -> None:
    source = write_audio(tmp_path / "in" / "my_song.wav", drums.y, sr=SR)
    before = source.read_bytes()
    result = extract_file(source, tmp_path / "out", ExtractConfig(), cache_dir=tmp_path / "c")
    assert result.out == tmp_path / "out" / "my_song.parquet" and result.error is None
    assert read_table(result.out).meta["source"] == str(source)
    assert source.read_bytes() == before  # inputs are never touched
    # Same content under another name: served from the cache.
    copy = shutil.copy(source, tmp_path / "in" / "copy.wav")
    assert extract_file(copy, tmp_path / "out", ExtractConfig(), cache_dir=tmp_path / "c").cached


@pytest.fixture(scope="module")
def tiny_demucs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer HTDemucs saved the way demucs saves its models."""
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    model = HTDemucs(
        sources=["drums", "bass", "other", "vocals"],
        channels=8,
        depth=2,
        t_layers=0,
        nfft=1024,
        segment=2,
    )
    args, kwargs = model._init_args_kwargs
    path = tmp_path_factory.mktemp("demucs") / "tiny.th"
    torch.save(
        {"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": model.state_dict()}, path
    )
    return path


@pytest.mark.slow
def test_stems_separated_by_demucs(drums: Audio, tiny_demucs: Path, tmp_path: Path) -> None:
    source = write_audio(tmp_path / "song.wav", drums.y[:, : 6 * SR], sr=SR)
    config = ExtractConfig(features=FeatureConfig(use_stems=True))
    cache = tmp_path / "cache"
    result = extract_file(source, tmp_path / "out", config, cache_dir=cache, demucs_dir=tiny_demucs)
    assert result.out is not None
    table = read_table(result.out)
    assert table.has_stems
    # A random model still splits a non-silent mix into non-silent stems.
    assert table.features[:, group_slice("stem")].any()
    assert list((cache / "stems").glob("*.npz"))  # separated stems are cached too
    plain_key = cache_key(load_audio(source), ExtractConfig())
    assert table.meta["cache_key"] != plain_key


def test_check_compatible_refuses_other_feature_version(analysed: TrackFeatures) -> None:
    old = dataclasses.replace(analysed, meta=dict(analysed.meta, feature_version="0"))
    with pytest.raises(DatasetError, match=r"old\.parquet has feature version '0'"):
        check_compatible([analysed, old], names=["new.parquet", "old.parquet"])
