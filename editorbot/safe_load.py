"""Reading files that someone else may have written: no code runs, no size is trusted.

Every loader of a checkpoint, normaliser or description goes through these helpers:

- :func:`read_json_object`: a JSON object from a file capped in size and nesting depth;
- :func:`inside`: a file name from a description, resolved inside its folder only;
- :func:`load_tensors`: a state dict read with ``torch.load(weights_only=True)`` (tensors and
  plain containers only; no pickled object is ever built), any failure as one line;
- :func:`build_checked`: a model built first on PyTorch's ``meta`` device (no memory), its
  parameter shapes compared with the weights', and only then allocated — so a config claiming
  ``hidden: 8192`` next to small weights is refused before gigabytes are allocated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from editorbot.errors import CheckpointError, EditorbotError

M = TypeVar("M", bound=nn.Module)

MAX_JSON_BYTES = 16 * 2**20
"""[bytes] largest description/normaliser JSON read (real ones are a few KB)."""
MAX_JSON_DEPTH = 32
"""[levels] deepest nesting accepted in a JSON description."""


def read_json_object(
    path: str | Path,
    *,
    error: type[EditorbotError] = CheckpointError,
    max_bytes: int = MAX_JSON_BYTES,
) -> dict[str, Any]:
    """The JSON object in ``path``.

    Raises:
        ``error``: missing, larger than ``max_bytes``, not JSON, nested deeper than
            :data:`MAX_JSON_DEPTH`, or not an object — naming the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f"{path}: {size} bytes, more than the {max_bytes} this file may hold")
        data = json.loads(path.read_bytes())
    except EditorbotError:
        raise
    except (OSError, ValueError, RecursionError) as e:
        raise error(f"{path}: missing or not JSON ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object, got {type(data).__name__}")
    if nesting_depth(data) > MAX_JSON_DEPTH:
        raise error(f"{path}: nested deeper than {MAX_JSON_DEPTH} levels")
    return data


def nesting_depth(x: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    children = x.values() if isinstance(x, dict) else x if isinstance(x, list) else ()
    return max((nesting_depth(c, level + 1) for c in children), default=level)


def finite_floats(values: Any, *, where: str, error: type[EditorbotError]) -> list[float]:
    """``values`` as a list of finite floats.

    Raises:
        ``error``: not a list of numbers, or a NaN/inf entry — naming ``where`` and the index.
    """
    if not isinstance(values, list):
        raise error(f"{where}: expected a list of numbers, got {type(values).__name__}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise error(f"{where}[{i}]: {v!r} is not a finite number")
        out.append(float(v))
    return out


def inside(folder: str | Path, name: Any, *, source: str) -> Path:
    """The file ``name`` (from a description) inside ``folder``; never outside it.

    Raises:
        CheckpointError: ``name`` is not a plain relative name, or resolves outside ``folder``.
    """
    folder = Path(folder)
    plain = isinstance(name, str) and name and not Path(name).is_absolute()
    if not plain or ".." in Path(name).parts:
        raise CheckpointError(f"{source}: weights {name!r} must name a file inside {folder}")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise CheckpointError(f"{source}: weights {name!r} resolves outside {folder}")
    return path


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict of tensors from ``path`` (``weights_only=True``, memory-mapped).

    Raises:
        CheckpointError: missing, empty, truncated, holding a pickled object, or not a mapping
            of names to tensors.
    """
    path = Path(path)
    try:
        # weights_only: only tensors and plain containers are rebuilt; anything else is refused
        # before it runs. mmap: a large file is paged in, not copied.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise CheckpointError(f"{path}: cannot read the weights ({type(e).__name__}: {e})") from e
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{path}: expected a mapping of parameter names to tensors")
    return dict(state)


def build_checked(factory: Callable[[], M], state: Mapping[str, torch.Tensor], *, source: str) -> M:
    """``factory()`` with ``state`` loaded, allocated only once every shape matches.

    Raises:
        CheckpointError: the config does not build, or a parameter is missing, extra or of
            another shape than the weights (named, with both shapes).
    """
    try:
        with torch.device("meta"):
            skeleton = factory()
    except EditorbotError:
        raise
    except (TypeError, ValueError, RuntimeError, AssertionError) as e:
        raise CheckpointError(f"{source}: the config does not build a model ({e})") from e
    ours = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in state.items()}
    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key) != theirs.get(key):
            raise CheckpointError(
                f"{source}: the weights do not fit the config: {key} is {theirs.get(key)} in "
                f"the weights, {ours.get(key)} in the config; re-train or re-copy"
            )
    model = factory()
    model.load_state_dict(state, strict=True)
    return model
