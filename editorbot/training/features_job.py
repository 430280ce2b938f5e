"""Beat-feature tables for many files as Ray tasks (the ``features`` command's work).

Each file runs :func:`editorbot.datasets.feature_cache.extract_file` in its own task on one CPU;
results come back as they finish (so the command can draw progress), and a bad file comes back as
a one-line error instead of stopping the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from editorbot.datasets.feature_cache import (
    ExtractConfig,
    FileResult,
    check_unique_outputs,
    extract_file,
)
from editorbot.errors import EditorbotError
from editorbot.training.local_ray import local_ray

logger = logging.getLogger(__name__)


def _extract_reporting(source: Path, out_dir: Path, config: ExtractConfig, **kw: Any) -> FileResult:
    """:func:`extract_file` with user errors turned into a result (runs inside Ray tasks)."""
    try:
        return extract_file(source, out_dir, config, **kw)
    except EditorbotError as e:
        return FileResult(source=source, out=None, error=str(e))


def extract_many(
    sources: Sequence[str | Path],
    out_dir: str | Path,
    config: ExtractConfig,
    *,
    cache_dir: str | Path | None = None,
    stems_dir: str | Path | None = None,
    demucs_dir: str | Path | None = None,
    num_cpus: int | None = None,
) -> Iterator[FileResult]:
    """Extract every file as a Ray task, yielding results as they finish.

    Starts a local Ray (``num_cpus``, no dashboard) unless one is running, and shuts it down
    after if it started it. A bad file gives a result with ``error`` set; the others go on.

    Raises:
        ParameterError: two inputs would write the same ``<name>.parquet``.
    """
    import ray

    paths = [Path(s) for s in sources]
    check_unique_outputs(paths, out_dir)
    pending: dict[Any, Path] = {}
    with local_ray(num_cpus):
        try:
            task = ray.remote(num_cpus=1)(_extract_reporting)
            kw = {"cache_dir": cache_dir, "stems_dir": stems_dir, "demucs_dir": demucs_dir}
            pending = {task.remote(p, Path(out_dir), config, **kw): p for p in paths}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                source = pending.pop(done[0])
                yield _result_of(ray, done[0], source)
        finally:
            for ref in pending:  # only left when the caller stopped early (Ctrl-C, break)
                ray.cancel(ref)


def _result_of(ray: Any, ref: Any, source: Path) -> FileResult:
    try:
        result: FileResult = ray.get(ref)
        return result
    except ray.exceptions.RayError as e:  # a bug, not a user error: keep the run going
        logger.debug("task for %s failed", source, exc_info=True)
        cause = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return FileResult(source=source, out=None, error=f"{source}: internal error: {cause}")
