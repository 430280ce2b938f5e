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


def label_one(raw: Path, edit: Path, out: Path, grid: Path | None) -> dict[str, Any]:
    """One pair: its summary, or ``{"name", "error"}`` with the one-line error of a bad pair."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from editorbot.editing.align_labels import label_files
    from editorbot.errors import EditorbotError

    try:
        return label_files(raw, edit, out, grid_path=grid)
    except EditorbotError as e:
        return {"name": raw.stem.removesuffix("_raw"), "error": str(e)}


def label_pairs(
    jobs: list[Job],
    *,
    num_cpus: int | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every job as a Ray task (starting Ray if needed); results in completion order.

    Args:
        jobs: the pairs.
        num_cpus: CPUs for a Ray instance started here (None: all).
        on_done: called with each result as it arrives (a command's progress bar).
    """
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1)(label_one)
    pending = [task.remote(*job) for job in jobs]
    results = []
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        result = ray.get(done[0])
        results.append(result)
        if on_done is not None:
            on_done(result)
    return results
