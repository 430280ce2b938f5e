"""Pair discovery and `editorbot data check`: matched, unmatched, ambiguous, unreadable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from editorbot import cli
from editorbot.audio.io import write_audio
from editorbot.datasets.pairs import check_pairs, discover_pairs, scan_pairs
from editorbot.errors import DatasetError

SR = 22050


def _tone(path: Path, duration_sec: float, *, sr: int = SR, channels: int = 1) -> Path:
    t = np.arange(int(duration_sec * sr)) / sr
    y = np.tile(0.3 * np.sin(2 * np.pi * 220 * t, dtype=np.float64), (channels, 1))
    return write_audio(path, y.astype(np.float32), sr=sr)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "training_data"
    _tone(root / "input" / "a_raw.wav", 8.0)
    _tone(root / "desired_output" / "a_edit.flac", 6.0, sr=44100, channels=2)
    _tone(root / "reference" / "a_ref.wav", 5.0)
    _tone(root / "input" / "b_raw.wav", 5.0)  # no edit
    _tone(root / "desired_output" / "c_edit.wav", 5.0)  # no raw
    _tone(root / "input" / "d_raw.wav", 5.0)
    (root / "desired_output" / "d_edit.wav").write_bytes(b"RIFF....not really")  # unreadable
    (root / "input" / "notes.txt").write_text("hi")
    return root


def test_discover_pairs(data_dir: Path) -> None:
    pairs = discover_pairs(data_dir)
    assert [p.name for p in pairs] == ["a", "d"]
    a = pairs[0]
    assert a.raw.name == "a_raw.wav" and a.edit.name == "a_edit.flac"
    assert a.reference is not None and a.reference.name == "a_ref.wav"
    assert pairs[1].reference is None


def test_scan_reports_unmatched_and_ignored(data_dir: Path) -> None:
    scan = scan_pairs(data_dir)
    problems = "\n".join(scan.problems)
    assert "b_raw.wav: no edit" in problems and "c_edit.wav: no raw track" in problems
    assert [p.name for p in scan.ignored] == ["notes.txt"]


def test_duplicate_names_are_a_problem(data_dir: Path) -> None:
    _tone(data_dir / "input" / "a_raw.flac", 5.0)
    scan = scan_pairs(data_dir)
    assert any("has the same name" in p for p in scan.problems)


def test_check_pairs_reads_every_file(data_dir: Path) -> None:
    report = check_pairs(data_dir)
    by_name = {c.pair.name: c for c in report.checks}
    a, d = by_name["a"], by_name["d"]
    assert a.ok and (a.edit.sr, a.edit.n_channels) == (44100, 2)
    # Durations are exact sample counts over the rate: 6 s / 8 s.
    assert a.duration_ratio == pytest.approx(0.75, abs=1e-6)
    assert not d.ok and d.edit.error is not None and "d_edit.wav" in d.edit.error
    assert [p.name for p in report.valid_pairs] == ["a"]


def test_cli_data_check_ok(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["data", "check", str(data_dir)]) == 0
    out, err = capsys.readouterr()
    assert "0.75" in out and "1 valid pair(s) of 2 matched" in err
    assert "unreadable:" in err and "d_edit.wav" in err and "unmatched:" in err


def test_cli_data_check_fails_without_valid_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "d"
    _tone(root / "input" / "x_raw.wav", 5.0)
    (root / "desired_output").mkdir()
    assert cli.main(["data", "check", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("editorbot: error:")
    assert "Traceback" not in err


def test_missing_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DatasetError, match=r"nowhere: no such folder"):
        discover_pairs(tmp_path / "nowhere")
    (tmp_path / "input").mkdir()
    with pytest.raises(DatasetError, match=r"desired_output: no such folder"):
        scan_pairs(tmp_path)
    assert cli.main(["data", "check", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no such folder" in err


def test_data_check_names_an_edit_not_made_of_its_raw_track(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "d"

    def music(seed: int) -> np.ndarray:
        """Noise bursts, one every 0.25 s, each different: matchable frame by frame."""
        r = np.random.default_rng(seed)
        n = int(0.25 * SR)
        env = np.exp(-np.arange(n) / (0.05 * SR))
        return np.concatenate([0.2 * r.normal(size=n) * env for _ in range(48)])[None]

    y = music(1)
    write_audio(root / "input" / "same_raw.wav", y.astype(np.float32), sr=SR)
    edit = np.concatenate([y[:, : 4 * SR], y[:, 6 * SR :]], axis=1)  # a 2 s cut
    edit = edit + 0.002 * rng.normal(size=edit.shape)  # an export's noise, about -35 dB
    write_audio(root / "desired_output" / "same_edit.wav", edit.astype(np.float32), sr=SR)
    write_audio(root / "input" / "wrong_raw.wav", y.astype(np.float32), sr=SR)
    write_audio(root / "desired_output" / "wrong_edit.wav", music(2).astype(np.float32), sr=SR)
    by_name = {c.pair.name: c for c in check_pairs(root).checks}
    assert by_name["same"].unrelated is None  # an edit of its raw track, exported
    assert by_name["wrong"].unrelated is not None and "wrong_edit.wav" in by_name["wrong"].unrelated
    assert cli.main(["data", "check", str(root)]) == 0  # both readable: still valid pairs
    err = capsys.readouterr().err
    assert sum(line.startswith("unusable:") for line in err.splitlines()) == 1
