"""Label many (raw, edit) pairs in parallel as Ray tasks (the ``labels`` command's work).

Each pair runs :func:`editorbot.editing.align_labels.label_files` in its own task on one CPU; a
bad pair comes back as a one-line error instead of failing the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

Job = tuple[Path, Path, Path, Path | None]
"""(raw track, edit, output decision list, decision list whose beat grid to use or None)."""


def label_one(
    raw: Path, edit: Path, out: Path, grid: Path | None, method: str = "auto"
) -> dict[str, Any]:
    """One pair: its summary, or ``{"name", "error"}`` with the one-line error of a bad pair;
    ``method`` is ``LabelConfig.method`` (which labeller)."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from editorbot.editing.align_labels import LabelConfig, label_files
    from editorbot.errors import EditorbotError

    name = raw.stem.removesuffix("_raw")
    try:
        config = LabelConfig(method=method)  # type: ignore[arg-type]  # checked by the CLI
        return label_files(raw, edit, out, grid_path=grid, config=config)
    except EditorbotError as e:
        return {"name": name, "error": str(e)}
    except Exception as e:
        logger.warning("%s: unexpected failure", name, exc_info=True)
        return {"name": name, "error": f"unexpected {type(e).__name__}: {e}"}


def label_pairs(
    jobs: list[Job],
    *,
    num_cpus: int | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
    method: str = "auto",
) -> list[dict[str, Any]]:
    """Run every job as a Ray task (starting Ray if needed); results in completion order.

    Args:
        jobs: the pairs.
        num_cpus: CPUs for a Ray instance started here (None: all).
        method: which labeller (``LabelConfig.method``).
        on_done: called with each result as it arrives (a command's progress bar).
    """
    import ray

    if not ray.is_initialized():
        from editorbot.training.local_ray import init_local

        init_local(num_cpus)
    task = ray.remote(num_cpus=1, max_retries=0)(label_one)
    names = {}
    for raw, edit, out, grid in jobs:
        names[task.remote(raw, edit, out, grid, method)] = raw.stem.removesuffix("_raw")
    pending = list(names)
    results = []
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        try:
            result = ray.get(done[0])
        except ray.exceptions.RayError as e:  # the worker died (memory, signal): report, go on
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            result = {"name": names[done[0]], "error": f"{type(e).__name__}: {first}"}
        results.append(result)
        if on_done is not None:
            on_done(result)
    return results
