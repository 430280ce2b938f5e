"""YAML configs onto frozen dataclasses: an unknown key names the key and the file, nested
dataclasses and YAML's numbers are coerced to the declared types."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from editorbot.config import from_dict, load_config
from editorbot.errors import ParameterError


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
