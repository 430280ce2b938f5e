"""The package's ground floor: config loading, the error hierarchy, the CLI shell, atomic writes,
and the dependency pins (pyproject's direct dependencies must be satisfied by the lock file)."""

from __future__ import annotations

import argparse
import re
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from editorbot import __version__, cli
from editorbot.atomic import atomic_path, write_text_atomic
from editorbot.config import from_dict, load_config
from editorbot.errors import (
    AudioLoadError,
    CheckpointError,
    DatasetError,
    EditorbotError,
    ParameterError,
)

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class _Inner:
    rate: float = 1.0
    """[1] a number."""


@dataclass(frozen=True)
class _Outer:
    name: str = "x"
    sizes: tuple[int, ...] = (1, 2)
    inner: _Inner = field(default_factory=_Inner)


def test_config_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("name: a\nlearning_rat: 0.1\n")
    with pytest.raises(ParameterError, match=r"run\.yaml: unknown key 'learning_rat'"):
        load_config(_Outer, path)


def test_config_nested_and_coerced() -> None:
    cfg = from_dict(_Outer, {"sizes": [3, 4], "inner": {"rate": 2}})
    assert cfg == _Outer(sizes=(3, 4), inner=_Inner(rate=2.0))
    assert isinstance(cfg.inner.rate, float)  # YAML's `2` becomes the declared float
    with pytest.raises(ParameterError, match=r"inner: unknown key 'bogus'"):
        from_dict(_Outer, {"inner": {"bogus": 1}})
    with pytest.raises(ParameterError, match=r"name: expected str"):
        from_dict(_Outer, {"name": 3})


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
    assert cli._dispatch(module, args) == 1  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("editorbot: error: training_data: no pairs found")


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary left behind


def test_pyproject_dependencies_are_pinned_in_lock() -> None:
    """`make` installs requirements.lock; pyproject must not ask for anything the lock lacks."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            lock[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    for spec in wanted:
        req = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in lock, f"{req.name} is in pyproject.toml but not in requirements.lock"
        version = lock[name].split("+")[0]
        assert req.specifier.contains(version, prereleases=True), (
            f"{req.name}: lock pins {lock[name]}, pyproject wants {req.specifier}"
        )
