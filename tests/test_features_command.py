"""The `features` command end to end (the demo is in test_demo.py): the issue's click-track
check, one clear line for bad files, and a directory run as Ray tasks that reports its bad file
and goes on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from editorbot import cli
from editorbot.audio.features import FEATURE_NAMES
from editorbot.audio.io import write_audio
from editorbot.commands import features as features_command
from editorbot.datasets.feature_cache import read_table
from editorbot.datasets.testsignals import click_track, drum_pattern

SR = 22050


def _one_error_line(err: str, *names: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("editorbot: error: ")
    assert all(n in lines[0] for n in names), lines[0]
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def click_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    track = click_track(tempo_bpm=120.0, duration_sec=20.0, sr=SR)
    return write_audio(tmp_path_factory.mktemp("in") / "click.wav", track.y[None, :], sr=SR)


def test_features_on_click_track(click_wav: Path, tmp_path: Path) -> None:
    assert cli.main(["features", str(click_wav), "--out", str(tmp_path)]) == 0
    table = pq.read_table(tmp_path / "click.parquet")
    assert table.column_names == ["beat_index", "beat_time", *FEATURE_NAMES]
    assert len(FEATURE_NAMES) == 121
    # 20 s at 120 BPM = 40 beats; ±2 is the allowance for edge beats.
    assert abs(table.num_rows - 40) <= 2
    values = np.stack([table.column(n).to_numpy() for n in FEATURE_NAMES], axis=1)
    assert not np.isnan(values).any()
    meta = read_table(tmp_path / "click.parquet").meta
    assert meta["sample_rate"] == SR and meta["stems"] is False
    assert meta["tempo"] == pytest.approx(120.0, rel=0.01)


def test_features_runs_as_module_main(click_wav: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    argv = [str(click_wav), "--out", str(tmp_path / "o"), "--cache-dir", str(cache)]
    assert features_command.main(argv) == 0
    assert len(list(cache.glob("*.parquet"))) == 1
    assert features_command.main(argv) == 0  # second run: a cache hit, same output
    assert (tmp_path / "o" / "click.parquet").exists()


def test_corrupt_file_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64))
    assert cli.main(["features", str(bad), "--out", str(tmp_path / "o")]) == 1
    _one_error_line(capsys.readouterr().err, "broken.wav")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_silent_file_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    silent = write_audio(tmp_path / "quiet.wav", np.zeros((1, 10 * SR), np.float32), sr=SR)
    assert cli.main(["features", str(silent), "--out", str(tmp_path / "o")]) == 1
    _one_error_line(capsys.readouterr().err, "quiet.wav", "all silent")


def test_missing_file_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["features", str(tmp_path / "nope.wav"), "--out", str(tmp_path)]) == 1
    _one_error_line(capsys.readouterr().err, "nope.wav", "no such file")


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(240)
def test_features_directory_in_parallel_with_ray(
    ray_session: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "tracks"
    for i, tempo in enumerate((100.0, 140.0)):
        track = drum_pattern(tempo_bpm=tempo, duration_sec=8.0, sr=SR, seed=i)
        write_audio(folder / f"song{i}.wav", track.y[None, :], sr=SR)
    (folder / "corrupt.wav").write_bytes(b"RIFF" + bytes(100))
    out = tmp_path / "out"
    assert cli.main(["features", str(folder), "--out", str(out), "--num-cpus", "2"]) == 1
    assert sorted(p.name for p in out.glob("*.parquet")) == ["song0.parquet", "song1.parquet"]
    assert read_table(out / "song1.parquet").meta["tempo"] == pytest.approx(140.0, rel=0.01)
    err_lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err_lines if line.startswith("editorbot: error:")]
    assert len(errors) == 1 and "corrupt.wav" in errors[0]
    assert "2 of 3 files" in err_lines[-1]


def test_duplicate_output_names_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.wav").write_bytes(b"0")
    argv = ["features", str(tmp_path / "a" / "x.wav"), str(tmp_path / "b" / "x.wav")]
    assert cli.main([*argv, "--out", str(tmp_path / "o")]) == 1
    _one_error_line(capsys.readouterr().err, "would both write")
