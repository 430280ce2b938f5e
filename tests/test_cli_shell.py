"""The console script's shell: ``--version``, ``--help``, and a user error (any
``EditorbotError``) as one line on stderr with exit code 1, never a traceback."""

from __future__ import annotations

import argparse
import types

import pytest

from editorbot import __version__, cli
from editorbot.errors import (
    AudioLoadError,
    CheckpointError,
    DatasetError,
    EditorbotError,
    ParameterError,
)


def test_error_hierarchy() -> None:
    for cls in (ParameterError, AudioLoadError, DatasetError, CheckpointError):
        assert issubclass(cls, EditorbotError)


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"editorbot {__version__}"


def test_cli_user_error_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    def run(args: argparse.Namespace) -> int:
        raise DatasetError("training_data: no pairs found; put X_raw.wav in input/")

    module = types.SimpleNamespace(run=run)
    args = argparse.Namespace(verbose=False, debug=False)
    assert cli.run_command(module, args) == 1  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("editorbot: error: training_data: no pairs found")


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("features", "data", "demo"))
