"""``editorbot demo --quick``: the whole pipeline end to end on tiny settings (real Ray, RLlib,
Ray Train, audio written and read back), and its one-line error for a bad ``--out``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from editorbot import cli
from editorbot.evaluation.baselines import BASELINES


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_quick_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ray_session: object
) -> None:
    out = tmp_path / "demo"
    assert cli.main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    systems = metrics["systems"]
    assert set(systems) == {"rl", "supervised", *BASELINES}
    # The held-out reference is the alignment's labels, inferred from the audio.
    assert metrics["reference"].startswith("labels")
    # The oracle renders the reference decisions: its per-beat agreement is exact by definition.
    assert systems["oracle"]["type_accuracy"] == 1.0
    for name in ("rl", "supervised"):
        s = systems[name]
        assert 0.0 <= s["type_accuracy"] <= 1.0 and s["n_beats"] > 0
        assert s["log_mel_l1"] > 0.0  # a real render compared with the human edit
        edit = out / "report" / "edits" / f"{metrics['pairs'][0]}_{name}.wav"
        assert edit.stat().st_size > 10_000 and str(edit) in printed
    report = (out / "report" / "report.md").read_text()
    for png in ("audio.png", "timeline.png", "confusion_rl.png", "curves_rl.png"):
        assert f"]({png})" in report and (out / "report" / png).stat().st_size > 10_000
    assert str(out / "report" / "report.md") in printed


def test_demo_refuses_a_foreign_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine.txt").write_text("user data")
    assert cli.main(["demo", "--quick", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not made by `editorbot demo`" in err[0]
    assert (tmp_path / "mine.txt").read_text() == "user data"  # nothing touched


def test_demo_out_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "file"
    bad.write_text("x")
    assert cli.main(["demo", "--quick", "--out", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "--out" in err[0]


def test_bench_demo_ppo_names_a_folder_that_is_not_a_demo_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo-PPO benchmark on a folder with no ``bc_data/``: exit 1 and one line naming the
    folder and the command that makes one."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import bench_demo_ppo

    assert bench_demo_ppo.main(["--demo", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0] and "make demo" in err[0]
