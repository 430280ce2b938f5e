"""Every command turns a user mistake into ONE line on stderr and exit code 1, no traceback.

Missing inputs and bad config keys are the mistakes every command can meet; the commands' own
tests cover their specific bad inputs (corrupt, silent, too short audio; bad decision lists).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from editorbot.cli import main as cli

MISSING = "/nonexistent/editorbot-test"


def _cases(tmp: Path) -> dict[str, list[str]]:
    bad_yaml = tmp / "bad.yaml"
    bad_yaml.write_text("ppo:\n  learning_rat: 0.1\n")
    a_file = tmp / "a_file.txt"
    a_file.write_text("not a folder")
    return {
        "data check": ["data", "check", MISSING],
        "features": ["features", f"{MISSING}.wav", "--out", str(tmp / "f")],
        "labels": ["labels", "--data-dir", MISSING, "--out", str(tmp / "l")],
        "evaluate-labels": ["evaluate-labels", "--pred", MISSING, "--truth", MISSING],
        "augment": ["augment", "--data-dir", MISSING, "--out", str(tmp / "a")],
        "bc-data": ["bc-data", "--labels", MISSING, "--data-dir", MISSING, "--out", str(tmp / "b")],
        "train rl": ["train", "rl", "--data-dir", MISSING, "--save-dir", str(tmp / "m")],
        "train rl bad key": ["train", "rl", "--config", str(bad_yaml), "--save-dir", str(tmp)],
        "train supervised": ["train", "supervised", "--data-dir", MISSING, "--save-dir", str(tmp)],
        "tune missing": ["tune", f"{MISSING}.yaml", "--storage", str(tmp / "t")],
        "tune bad key": ["tune", str(bad_yaml), "--storage", str(tmp / "t")],
        "edit": ["edit", f"{MISSING}.wav", "--checkpoint", MISSING, "--output", str(tmp / "o.wav")],
        "evaluate": ["evaluate", "--data-dir", MISSING, "--checkpoint", MISSING],
        "render": [
            "render",
            f"{MISSING}.wav",
            "--decisions",
            f"{MISSING}.json",
            "--out",
            str(tmp / "o.wav"),
        ],
        "demo-data": ["demo-data", "--out", str(tmp / "d"), "--tracks", "0"],
        "demo": ["demo", "--out", str(a_file)],
    }


NAMES = [
    "data check", "features", "labels", "evaluate-labels", "augment", "bc-data", "train rl",
    "train rl bad key", "train supervised", "tune missing", "tune bad key", "edit", "evaluate",
    "render", "demo-data", "demo",
]  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", NAMES)
def test_user_mistake_is_one_line_and_exit_1(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _cases(tmp_path)[name]
    assert cli(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    lines = [line for line in err if not line.startswith(("20", "WARNING", "INFO"))]  # log lines
    assert len(lines) == 1 and lines[0].startswith("editorbot: error: "), err
    assert "Traceback" not in "\n".join(err)
