"""``editorbot edit`` with an RL checkpoint: no Ray imported, deterministic, errors in one line.

The checkpoint here is written from an untrained module (no training needed to test loading,
the policy → renderer path and the files written); training → edit is in test_rl_training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from editorbot.cli import main as cli
from editorbot.editing.decisions import DecisionList


@pytest.fixture(scope="module")
def raw_track(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from editorbot.datasets.demo import DemoConfig, generate
    from editorbot.datasets.song import SongConfig

    out = tmp_path_factory.mktemp("demo")
    generate(out, n_tracks=1, seed=3, config=DemoConfig(song=SongConfig(min_seconds=20,
             max_seconds=25, sr=22050)))  # fmt: skip
    return next((out / "input").glob("*_raw.wav"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from env_tables import write_untrained_checkpoint

    return write_untrained_checkpoint(tmp_path_factory.mktemp("ckpt") / "best")


def test_edit_writes_audio_and_decisions_deterministically(
    raw_track: Path, checkpoint: Path, tmp_path: Path
) -> None:
    decisions = []
    for i in range(2):
        out = tmp_path / f"out{i}.wav"
        assert (
            cli(["edit", str(raw_track), "--checkpoint", str(checkpoint), "--output", str(out)])
            == 0
        )
        y, sr = sf.read(str(out), always_2d=True)
        assert sr == sf.info(str(raw_track)).samplerate and len(y) > 0 and np.isfinite(y).all()
        decisions.append(json.loads(out.with_suffix(".decisions.json").read_text())["decisions"])
    assert decisions[0] == decisions[1]  # greedy policy: the same edit every time
    dl = DecisionList.load(tmp_path / "out0.decisions.json")
    dl.validate(len(dl.beat_times), name="out0")  # a valid edit under the action masks


def test_seed_infer_alias_makes_the_same_edit(
    raw_track: Path, checkpoint: Path, tmp_path: Path
) -> None:
    from editorbot.infer import main as infer

    seed, ref = tmp_path / "seed.wav", tmp_path / "ref.wav"
    assert infer([str(raw_track), "--checkpoint", str(checkpoint), "--output", str(seed)]) == 0
    assert cli(["edit", str(raw_track), "--checkpoint", str(checkpoint), "--output", str(ref)]) == 0
    lists = [json.loads(o.with_suffix(".decisions.json").read_text()) for o in (seed, ref)]
    assert lists[0]["decisions"] == lists[1]["decisions"]
    np.testing.assert_array_equal(sf.read(str(seed))[0], sf.read(str(ref))[0])


@pytest.mark.slow
def test_edit_never_imports_ray(raw_track: Path, checkpoint: Path, tmp_path: Path) -> None:
    """In a fresh interpreter (other tests import Ray), the command line's `editorbot edit` and
    the seed's `python -m editorbot.infer` run without importing ``ray`` at all (the policy is
    plain PyTorch); only the command-line run (argv from sys.argv) freezes the GC before exit."""
    import subprocess
    import sys

    outs = [tmp_path / "fresh.wav", tmp_path / "fresh_infer.wav"]
    common = f"{str(raw_track)!r}, '--checkpoint', {str(checkpoint)!r}, '--output'"
    code = (
        "import gc, sys; from editorbot.cli import main; "
        "from editorbot.infer import main as infer; "
        f"rc_infer = infer([{common}, {str(outs[1])!r}]); untouched = gc.get_freeze_count() == 0; "
        f"sys.argv = ['editorbot', 'edit', {common}, {str(outs[0])!r}]; rc = main(); "
        "print(rc, rc_infer, untouched and gc.get_freeze_count() > 0, "
        "sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=False
    )
    assert result.stdout.strip().splitlines()[-1:] == ["0 0 True []"], result.stderr[-2000:]
    assert all(out.exists() for out in outs)


def test_sampled_edits_differ_between_seeds(
    raw_track: Path, checkpoint: Path, tmp_path: Path
) -> None:
    lists = []
    for seed in (1, 2):
        out = tmp_path / f"s{seed}.wav"
        argv = ["edit", str(raw_track), "--checkpoint", str(checkpoint), "--output", str(out),
                "--sample", "--seed", str(seed)]  # fmt: skip
        assert cli(argv) == 0
        lists.append(json.loads(out.with_suffix(".decisions.json").read_text())["decisions"])
    # An untrained policy is close to uniform over ~100 valid actions per step: two seeds giving
    # the same list of dozens of decisions would mean --sample is ignored.
    assert lists[0] != lists[1]


def test_edit_errors_are_one_line(raw_track: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "x.wav"
    assert cli(["edit", str(raw_track), "--checkpoint", str(tmp_path), "--output", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "editorbot_checkpoint.json" in err
    (tmp_path / "editorbot_checkpoint.json").write_text(json.dumps({"kind": "mystery"}))
    assert cli(["edit", str(raw_track), "--checkpoint", str(tmp_path), "--output", str(out)]) == 1
    assert "unknown checkpoint kind 'mystery'" in capsys.readouterr().err


def test_edit_refuses_to_overwrite_its_input(raw_track: Path, checkpoint: Path, capsys) -> None:
    before = raw_track.read_bytes()
    argv = ["edit", str(raw_track), "--checkpoint", str(checkpoint), "--output", str(raw_track)]
    assert cli(argv) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert raw_track.read_bytes() == before


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("feature_version", "0", "trained on feature version '0'"), ("version", "0.0.1", "0.0.1")],
)
def test_incompatible_checkpoint_is_refused(
    checkpoint: Path, tmp_path: Path, key: str, value: str, message: str
) -> None:
    """A checkpoint from another feature version or release is refused, never run on garbage."""
    import shutil

    from editorbot.errors import CheckpointError
    from editorbot.inference.rl import CHECKPOINT_JSON, load_policy

    old = tmp_path / "old"
    shutil.copytree(checkpoint, old)
    meta = json.loads((old / CHECKPOINT_JSON).read_text())
    meta[key] = value
    (old / CHECKPOINT_JSON).write_text(json.dumps(meta))
    load_policy(checkpoint)  # the untouched one loads
    with pytest.raises(CheckpointError, match=message):
        load_policy(old)
