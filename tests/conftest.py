"""Shared fixtures: one local Ray instance per test session, and test-wide settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# One torch thread: CI has 2 cores and Ray workers need the other one (2 torch threads beside
# a busy worker ran PPO 2-10x slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray cluster (2 CPUs, no dashboard) shared by every Ray test in the session."""
    import ray

    if not ray.is_initialized():
        from editorbot.training.local_ray import init_local

        init_local(2)
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True, scope="session")
def _torch_one_thread():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two short generated pairs with truth (the smallest data the train/validation split
    accepts); short songs keep features and the env fast."""
    from editorbot.datasets.demo import DemoConfig, generate
    from editorbot.datasets.song import SongConfig

    demo = tmp_path_factory.mktemp("tiny_demo")
    config = DemoConfig(song=SongConfig(min_seconds=20, max_seconds=30, sr=22050))
    generate(demo, n_tracks=2, seed=0, config=config)
    return demo


@pytest.fixture(scope="session")
def tiny_bc_dir(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``editorbot bc-data`` output (tables, normaliser, expert episodes) of ``tiny_demo``."""
    from editorbot.training import bc_data

    labels = sorted((tiny_demo / "truth").glob("*.json"))
    tables, normalizer = bc_data.build_tables(
        [bc_data.load_raw_track(p, tiny_demo) for p in labels]
    )
    out = tmp_path_factory.mktemp("tiny_bc")
    bc_data.write_bc_data(out, tables, normalizer, env_config={"window": 64})
    return out


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local S3-compatible server (moto) on loopback, one per test module (storage URIs)."""
    from s3_server import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    try:
        yield server
    finally:
        server.stop()
