"""No run loses the ground truth or its best policy, and one odd pair never sinks a batch; a
local labels run listens on loopback only."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from editorbot.atomic import replace_dir
from editorbot.cli import main as cli
from editorbot.errors import CheckpointError


def test_replace_dir_swaps_in_one_step(tmp_path: Path) -> None:
    best, new = tmp_path / "best", tmp_path / ".best.tmp"
    new.mkdir()
    (new / "a").write_text("first")
    replace_dir(new, best)  # nothing there yet: a plain rename
    assert (best / "a").read_text() == "first" and not new.exists()
    new.mkdir()
    (new / "b").write_text("second")
    replace_dir(new, best)  # over a non-empty folder: exchanged, the old one deleted
    assert sorted(p.name for p in best.iterdir()) == ["b"] and not new.exists()


def test_resume_refuses_a_corrupt_best(tmp_path: Path) -> None:
    from editorbot.training.rl_train import BestCheckpoint

    assert BestCheckpoint.read(tmp_path / "absent") == BestCheckpoint()  # nothing yet: start afresh
    best = tmp_path / "best"
    best.mkdir()
    (best / "editorbot_checkpoint.json").write_text('{"validation": {"iteration": 3, ')
    with pytest.raises(CheckpointError, match=r"best/editorbot_checkpoint\.json: unreadable"):
        BestCheckpoint.read(best)
    meta = {"validation": {"iteration": 3, "type_agreement": 0.75}}
    (best / "editorbot_checkpoint.json").write_text(json.dumps(meta))
    assert BestCheckpoint.read(best) == BestCheckpoint(3, 0.75, None)


def test_labels_refuses_the_data_folders_truth(
    tiny_demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = tiny_demo / "truth"
    before = {p.name: p.read_bytes() for p in truth.glob("*.json")}
    assert before
    assert cli(["labels", "--data-dir", str(tiny_demo), "--out", str(truth)]) == 1
    err = capsys.readouterr().err
    assert "a data folder's truth/" in err and "--force" in err
    assert {p.name: p.read_bytes() for p in truth.glob("*.json")} == before  # untouched


@pytest.mark.slow
def test_an_unexpected_failure_in_one_pair_is_reported_and_the_batch_goes_on(
    tiny_demo: Path, tmp_path: Path, ray_session
) -> None:
    """An output path below a file makes the first pair fail with an OSError (no
    EditorbotError, which alone used to be caught); the other pair is still labelled."""
    from editorbot.datasets.pairs import discover_pairs
    from editorbot.training.labels_job import label_pairs

    pairs = discover_pairs(tiny_demo)
    (tmp_path / "a_file").write_text("")
    outs = [tmp_path / "a_file" / "x.json", tmp_path / f"{pairs[1].name}.json"]
    jobs = [(p.raw, p.edit, out, None) for p, out in zip(pairs, outs, strict=False)]
    results = {r["name"]: r for r in label_pairs(jobs)}
    assert results[pairs[0].name]["error"].startswith("unexpected "), results[pairs[0].name]
    assert "error" not in results[pairs[1].name]
    assert (tmp_path / f"{pairs[1].name}.json").exists()


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        out.add(pid)
        todo += children.get(pid, [])
    return out


def _listening(pids: set[int]) -> dict[str, set[str]]:
    """Local address -> process names, for the listening TCP sockets of ``pids`` (ss -ltnp)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found: dict[str, set[str]] = {}
    for line in out.splitlines():
        if {int(p) for p in re.findall(r"pid=(\d+)", line)} & pids:
            found.setdefault(line.split()[3], set()).update(re.findall(r'\("([^"]+)"', line))
    return found


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_local_labels_run_listens_on_loopback_only(tiny_demo: Path, tmp_path: Path) -> None:
    """``ss -ltn`` while ``editorbot labels`` runs: every socket of its process tree (GCS,
    raylet, object manager, workers, agents) is bound to 127.0.0.1."""
    if subprocess.run(["ss", "-V"], capture_output=True, check=False).returncode != 0:
        pytest.skip("ss (iproute2) not installed")
    cmd = [sys.executable, "-m", "editorbot", "labels", "--data-dir", str(tiny_demo),
           "--out", str(tmp_path / "labels"), "--num-cpus", "1", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[str, set[str]] = {}
    try:
        while proc.poll() is None:
            seen.update(_listening(_descendants(proc.pid)))
            time.sleep(0.5)
    finally:
        proc.kill() if proc.poll() is None else None
    _, err = proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    names = set().union(*seen.values()) if seen else set()
    assert {"gcs_server", "raylet"} <= names, seen  # the check saw Ray's own servers
    exposed = {a: n for a, n in seen.items() if not a.startswith(("127.0.0.1:", "[::ffff:127."))}
    assert not exposed, f"listening beyond loopback: {exposed}"
