"""Surviving failures: a killed env runner, a killed training driver (a Tune trial that raises
is retried from its checkpoint: ``tests/test_tune.py``).

The env-runner test uses the session's in-process Ray (``conftest.ray_session``, 2 CPUs). The
driver test runs ``editorbot train rl`` in a child process with ``RAY_ADDRESS=local`` (its own
fresh local Ray, never one found on the machine) in its own process group, and kills that
group: driver, raylet, GCS and workers together, as a lost machine would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from editorbot.cli import main as cli

CONFIG = Path(__file__).resolve().parents[1] / "tune_configs" / "ppo_debug.yaml"


@pytest.fixture(scope="module")
def bc_dir(tiny_bc_dir: Path) -> Path:
    return tiny_bc_dir


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(240)
def test_killed_env_runner_is_restarted_and_training_goes_on(
    ray_session: object, bc_dir: Path
) -> None:
    import dataclasses

    from editorbot.training.ppo import load_run_config, ppo_config

    cfg = load_run_config(CONFIG)
    env_config = {**cfg.env, "tables": str(bc_dir / "tables"), "seed": 0}
    settings = dataclasses.replace(cfg.ppo, num_env_runners=1, bc_weight=0.0)
    algo = ppo_config(settings, env_config=env_config, module=cfg.module).build_algo()
    try:
        group = algo.env_runner_group
        (pid,) = group.foreach_env_runner(lambda r: os.getpid(), local_env_runner=False)
        algo.train()
        os.kill(pid, signal.SIGKILL)  # the runner's process dies between two iterations
        # Iterations go on while RLlib recreates the runner (about 3 s per actor);
        # 20 iterations of this tiny config are far more than a restart needs.
        for _ in range(20):
            result = algo.train()  # never raises: a lost runner is taken out of service
            if group.num_healthy_remote_workers() == 1 and (
                result["env_runners"].get("num_env_steps_sampled", 0) > 0
            ):
                break
            time.sleep(0.5)
        (new_pid,) = group.foreach_env_runner(lambda r: os.getpid(), local_env_runner=False)
        assert new_pid != pid  # a new process, sampling again (the loop's break condition)
        assert result["env_runners"]["num_env_steps_sampled"] > 0
    finally:
        algo.stop()


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(300)
def test_killed_driver_resumes_without_losing_an_iteration(
    ray_session: object, bc_dir: Path, tmp_path: Path
) -> None:
    save = tmp_path / "run"
    argv = [
        "train",
        "rl",
        "--config",
        str(CONFIG),
        "--bc-data",
        str(bc_dir),
        "--save-dir",
        str(save),
        "--stop-iters",
        "3",
    ]
    env = {**os.environ, "RAY_ADDRESS": "local", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "editorbot", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not (save / "checkpoints" / "iter_0001").is_dir():
            assert proc.poll() is None, "training exited before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 180 s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    saved = sorted(p.name for p in (save / "checkpoints").glob("iter_*"))
    assert saved and saved[-1] != "iter_0003"  # killed mid-run
    last = int(saved[-1].removeprefix("iter_"))
    before = _iterations(save)
    assert cli([*argv, "--resume"]) == 0
    after = _iterations(save)[len(before) :]
    # Resumed right after the last checkpoint: nothing completed is re-done or skipped.
    assert after == list(range(last + 1, 4))
    assert sorted(p.name for p in (save / "checkpoints").glob("iter_*"))[-1] == "iter_0003"
    assert not list((save / "checkpoints").glob(".iter_*"))  # no half-written checkpoint


def _iterations(save: Path) -> list[int]:
    lines = (save / "progress.jsonl").read_text().splitlines()
    return [json.loads(line)["iteration"] for line in lines]
