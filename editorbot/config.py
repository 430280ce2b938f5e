"""Loading frozen config dataclasses from YAML/dicts, with unknown keys rejected by name.

Every consumer has its own frozen dataclass (``AudioConfig``, ``FeatureConfig``, ...) defined next
to the code that reads it; this module only maps plain data onto them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from editorbot.errors import ParameterError

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any] | None, *, source: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``, recursing into nested dataclass fields.

    Args:
        cls: a (frozen) dataclass type.
        data: plain mapping, e.g. parsed YAML; ``None`` means all defaults.
        source: where the data came from (a file path), named in error messages.

    Raises:
        ParameterError: on an unknown key or a value of the wrong type.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParameterError(f"{source}: expected a mapping for {cls.__name__}, got {data!r}")
    assert dataclasses.is_dataclass(cls), cls
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParameterError(
            f"{source}: unknown key {unknown[0]!r} for {cls.__name__}; "
            f"valid keys are {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {
        name: _coerce(hints[name], value, f"{source}: {name}") for name, value in data.items()
    }
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ParameterError(f"{source}: {e}") from e


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_dict(hint, value, source=where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where) if len(args) == 1 else value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ParameterError(f"{where}: expected a list, got {value!r}")
        item_args = typing.get_args(hint)
        item = item_args[0] if item_args else Any
        items = [_coerce(item, v, where) for v in value]
        return tuple(items) if origin is tuple else items
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ParameterError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ParameterError(f"{path}: cannot read config ({e.strerror})") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ParameterError(f"{path}: not valid YAML ({e})") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: expected a mapping at the top level")
    return data


def load_config(cls: type[T], path: str | Path) -> T:
    """Load dataclass ``cls`` from a YAML file, rejecting unknown keys by name and file."""
    return from_dict(cls, load_yaml(path), source=str(path))


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-data form of a config dataclass (for checkpoints and logs)."""
    return dataclasses.asdict(cfg)
