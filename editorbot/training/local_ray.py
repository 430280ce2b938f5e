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
    """``ray.init`` of a single-machine instance reachable from this machine only; with
    ``RAY_ADDRESS`` set (a job on a cluster), join that cluster instead.

    Ray's GCS, raylet, object manager, workers and agents listen on the node's address, and by
    default that is the machine's network address: anyone on the network could reach them.
    Here the node's address is the loopback one, so every one of them binds ``127.0.0.1``, and
    the dashboard is off (its host, should a caller turn it on, is loopback too).

    Ray turns a loopback ``_node_ip_address`` back into the network address unless
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is off (its single-machine mode on macOS/Windows):
    that switch is set while Ray starts (in the environment its processes inherit, and in the
    constant Ray read when imported), then restored.

    Args:
        num_cpus: CPUs of the instance (None: all of this machine's).
        kwargs: further ``ray.init`` arguments.
    """
    import os

    import ray
    from ray._private import ray_constants

    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False, **kwargs)
        return
    saved = os.environ.get(_SINGLE_MACHINE_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_SINGLE_MACHINE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(
            num_cpus=num_cpus,
            _node_ip_address=LOOPBACK,
            include_dashboard=False,
            dashboard_host=LOOPBACK,
            log_to_driver=False,
            **kwargs,
        )
    finally:  # Ray's processes are started: a later cluster in this process is unaffected
        ray_constants.ENABLE_RAY_CLUSTER = saved[1]
        if saved[0] is None:
            os.environ.pop(_SINGLE_MACHINE_ENV, None)
        else:
            os.environ[_SINGLE_MACHINE_ENV] = saved[0]


_SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


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
