"""Loading frozen config dataclasses from YAML/dicts, with unknown keys rejected by name.

Every consumer has its own frozen dataclass (``AudioConfig``, ``FeatureConfig``, ...) defined next
to the code that reads it; this module only maps plain data onto them.
"""

from __future__ import annotations

import dataclasses
import math
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
        name: _check_range(name, _coerce(hints[name], value, f"{source}: {name}"), source)
        for name, value in data.items()
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


MAX_YAML_BYTES = 2**20
"""[bytes] largest config file read (real ones are a few KB)."""
MAX_SIZE = 2**24
"""[count] largest value of a size or count field (batch sizes, widths, epochs ...)."""
MAX_MODEL_WIDTH = 16384
"""[units] largest width of a model field (``hidden``, ``heads``, ``layers`` ...)."""
_MODEL_SIZES = frozenset({
    "hidden", "head_hidden", "heads", "n_heads", "layers", "n_layers", "embedding_dim",
    "encoder_dim", "decoder_dim", "kernel_size", "n_mels", "window", "ff_mult",
})  # fmt: skip
_UNIT_INTERVAL = frozenset({"gamma", "lambda_", "dropout"})
_COUNT_PREFIXES = ("n_", "num_")
_COUNT_SUFFIXES = ("_size", "_batch", "_iters", "_epochs", "epochs", "iterations", "_steps")


def _check_range(name: str, value: Any, source: str) -> Any:
    """``value`` of field ``name`` if it is in range: numbers finite, learning rates in
    (0, 1], discount-like factors in [0, 1], model sizes in [1, MAX_MODEL_WIDTH], counts and
    sizes in [0, MAX_SIZE].

    Raises:
        ParameterError: naming the file, the field and the range.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    where = f"{source}: {name} = {value!r}"
    if not math.isfinite(value):
        raise ParameterError(f"{where}: must be a finite number")
    lo, hi = -math.inf, math.inf
    if name == "lr" or name.endswith("_lr"):
        if not 0 < value <= 1:
            raise ParameterError(f"{where}: a learning rate must be in (0, 1]")
    elif name in _UNIT_INTERVAL:
        lo, hi = 0, 1
    elif name in _MODEL_SIZES:
        lo, hi = 1, MAX_MODEL_WIDTH
    elif isinstance(value, int) and (
        name.startswith(_COUNT_PREFIXES) or name.endswith(_COUNT_SUFFIXES)
    ):
        lo, hi = 0, MAX_SIZE
    if not lo <= value <= hi:
        raise ParameterError(f"{where}: outside [{lo}, {hi}]")
    return value


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors/aliases: each alias level can multiply the
    document (a few hundred bytes expand to gigabytes), and configs never need them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            line = event.start_mark.line + 1
            raise yaml.YAMLError(f"alias *{event.anchor} on line {line}: aliases are not accepted")
        return super().compose_node(parent, index)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (at most :data:`MAX_YAML_BYTES`, no aliases); errors name the file."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ParameterError(f"{path}: larger than {MAX_YAML_BYTES} bytes; not a config")
        text = path.read_text()
    except OSError as e:
        raise ParameterError(f"{path}: cannot read config ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise ParameterError(f"{path}: not a text file ({e})") from e
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)
    except (yaml.YAMLError, RecursionError) as e:
        detail = " ".join(str(e).split())  # one line: YAML's marks span several
        raise ParameterError(f"{path}: not valid YAML ({type(e).__name__}: {detail})") from e
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
