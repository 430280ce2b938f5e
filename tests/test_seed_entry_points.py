"""The seed's entry points (``python -m editorbot.infer|train|supervised_trainer``) are thin shims
over ``editorbot.commands.seed``: each is at most ten lines, runs as a module with the flags of the
subcommand it stands for, and ``train`` maps the seed's flags onto ``editorbot train rl``'s."""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import editorbot
from editorbot.cli import build_parser

PACKAGE = Path(editorbot.__file__).parent
SHIMS = ("infer", "train", "supervised_trainer")
MAX_LINES = 10
"""The layout's promise: a shim is a docstring, an import and ``sys.exit(main())``."""


def _subparser(*path: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


@pytest.mark.parametrize("name", SHIMS)
def test_shim_is_short_and_imports_only_the_seed_module(name: str) -> None:
    path = PACKAGE / f"{name}.py"
    assert len(path.read_text().splitlines()) <= MAX_LINES, f"{path} is not a thin shim"
    imported = [
        (node.module, alias.name)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    ]
    # Public names of the one module that defines the seed's entry points, nothing private.
    assert imported == [("editorbot.commands.seed", name)]


@pytest.mark.parametrize(
    ("name", "same_as"),
    [("infer", ("edit",)), ("supervised_trainer", ("train", "supervised")), ("train", None)],
)
def test_shim_runs_as_a_module_with_its_subcommands_flags(
    name: str, same_as: tuple[str, ...] | None
) -> None:
    env = {**os.environ, "COLUMNS": "100"}
    result = subprocess.run(
        [sys.executable, "-m", f"editorbot.{name}", "--help"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: python -m editorbot.{name} ")
    text = result.stdout.replace(f"python -m editorbot.{name}", "")  # the prog is no flag
    flags = set(re.findall(r"(?<![\w-])--?[a-z][\w-]*", text))
    if same_as is None:  # the seed's RL flags
        assert {"--save-dir", "--bc-mixed", "--bc-weight", "--epochs", "--subprocess"} <= flags
    else:
        assert flags == _flags(_subparser(*same_as))


def test_train_maps_the_seed_flags_onto_train_rl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from editorbot.commands import seed
    from editorbot.training import rl_train

    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(rl_train, "run", lambda args: seen.append(args) or 0)
    argv = ["--save-dir", str(tmp_path / "m"), "--bc-mixed", str(tmp_path / "bc")]
    assert seed.train([*argv, "--epochs", "7", "--subprocess", "--bc-weight", "0.3"]) == 0
    assert seed.train(argv) == 0
    got, default = seen
    assert (got.bc_data, got.save_dir) == (tmp_path / "bc", tmp_path / "m")
    assert (got.stop_iters, got.num_env_runners, got.bc_weight) == (7, 1, 0.3)
    # Without --subprocess the config's env runners are kept (None = no override).
    assert (default.stop_iters, default.num_env_runners, default.bc_weight) == (100, None, None)
    # Every flag `train rl` reads is given, so the namespace is a complete `train rl` call.
    rl_dests = {a.dest for a in _subparser("train", "rl")._actions if a.option_strings}
    assert rl_dests - {"help", "verbose", "debug", "num_learners", "num_gpus_per_learner"} <= set(
        vars(got)
    )


def test_seed_labels_script_names_the_missing_edit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from editorbot.scripts.infer_rich_bc_labels import main

    (tmp_path / "input").mkdir()
    (tmp_path / "desired_output").mkdir()
    (tmp_path / "input" / "a_raw.wav").write_bytes(b"")  # pairs are matched by name, not read
    assert main(["--data_dir", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err  # one line, no traceback
    assert "a_raw.wav: no edit; expected" in err and "truth" in err
