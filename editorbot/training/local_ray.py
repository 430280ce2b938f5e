"""A Ray instance for the length of one command: joined if one is running, else started here.

Commands outside ``editorbot/training/`` (``demo``, ``train supervised``) use this instead of
importing ``ray`` themselves (STYLE.md: Ray is imported only where it is the point).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def local_ray(num_cpus: int | None = None) -> Iterator[None]:
    """Start a local Ray (no dashboard, worker logs not echoed) unless one is initialised.

    Args:
        num_cpus: CPUs of an instance started here (None: all of this machine's).

    Shuts Ray down on exit only if it was started here, so a caller's instance (a test's
    shared cluster, a ``ray job submit`` driver's) is left running.
    """
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        if started:
            ray.shutdown()
