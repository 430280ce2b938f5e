"""A Ray instance for the length of one command: joined if one is running, else started here.

Commands outside ``editorbot/training/`` (``demo``, ``train supervised``) use this instead of
importing ``ray`` themselves (STYLE.md: Ray is imported only where it is the point).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOOPBACK = "127.0.0.1"


def init_local(num_cpus: int | None = None, **kwargs: Any) -> None:
    """``ray.init`` of a single-machine instance reachable from this machine only.

    By default Ray's GCS, raylet, object manager and agents listen on every interface, so
    anyone on the network could submit work to them. Here the node's address is the loopback
    one and the dashboard is off (its host, should a caller turn it on, is loopback too).

    Args:
        num_cpus: CPUs of the instance (None: all of this machine's).
        kwargs: further ``ray.init`` arguments.
    """
    import ray

    ray.init(
        num_cpus=num_cpus,
        _node_ip_address=LOOPBACK,
        include_dashboard=False,
        dashboard_host=LOOPBACK,
        log_to_driver=False,
        **kwargs,
    )


@contextmanager
def local_ray(num_cpus: int | None = None) -> Iterator[None]:
    """Start a local Ray (:func:`init_local`) unless one is initialised.

    Args:
        num_cpus: CPUs of an instance started here (None: all of this machine's).

    Shuts Ray down on exit only if it was started here, so a caller's instance (a test's
    shared cluster, a ``ray job submit`` driver's) is left running.
    """
    import ray

    started = not ray.is_initialized()
    if started:
        init_local(num_cpus)
    try:
        yield
    finally:
        if started:
            ray.shutdown()
