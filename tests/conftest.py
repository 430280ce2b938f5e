"""Shared fixtures: one local Ray instance per test session, and test-wide settings."""

from __future__ import annotations

import os

import pytest

# One torch thread: CI has 2 cores and Ray workers need the other one (RAY_NOTES.md, "Threads").
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray cluster (2 CPUs, no dashboard) shared by every Ray test in the session."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True, scope="session")
def _torch_one_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(1)
