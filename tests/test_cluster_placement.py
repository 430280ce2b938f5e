"""Env runners pinned to a node type by a custom resource, on a real two-node loopback cluster.

The cluster (``tests/local_cluster.py``) is a head with 1 CPU and a worker with 2 CPUs that
advertises ``{"rollout": 2}``, like ``cluster.yaml``'s rollout nodes. Jobs are submitted over
HTTP and actors are read back through the dashboard's state API, so this module never calls
``ray.init`` into that cluster (the session's in-process Ray, ``conftest.ray_session``, is
only used by the last test, which needs no second node).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from local_cluster import LocalCluster

from editorbot.errors import ParameterError

CONFIG = Path(__file__).resolve().parents[1] / "tune_configs" / "ppo_debug.yaml"
ROLLOUT = "rollout"
"""The custom resource cluster.yaml gives its CPU rollout nodes."""
JOB_TIMEOUT_S = 300.0
"""[s] one tiny `editorbot train rl` job (BC + 1 PPO iteration took about 30 s on 2 cores)."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    c = LocalCluster(head_cpus=1, worker_cpus=2, worker_resources={ROLLOUT: 2}).start()
    try:
        yield c
    finally:
        c.stop()


def _write_config(path: Path, **ppo: Any) -> Path:
    """``ppo_debug.yaml`` with ``ppo`` keys replaced, as a new YAML file."""
    data = yaml.safe_load(CONFIG.read_text())
    data["ppo"].update(ppo)
    path.write_text(yaml.safe_dump(data))
    return path


def _run_job(cluster: LocalCluster, entry: str, during: Any = None) -> tuple[object, str]:
    """Submit ``entry``, call ``during()`` once while it runs, return (final status, logs)."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(cluster.dashboard)
    job_id = client.submit_job(entrypoint=entry, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    done = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while (status := client.get_job_status(job_id)) not in done:
        if during is not None and status == JobStatus.RUNNING:
            during()
            during = None
        if time.monotonic() > deadline:
            client.stop_job(job_id)
            raise AssertionError(f"job still running after {JOB_TIMEOUT_S:g} s")
        time.sleep(1.0)
    return status, client.get_job_logs(job_id)


def _assert_job_server_on_loopback_only(cluster: LocalCluster) -> None:
    """``ss -ltnp``: the dashboard / job-server port listens on 127.0.0.1 and nowhere else."""
    sockets = cluster.listening()
    on_port = {address for address, port, _ in sockets if port == cluster.dashboard_port}
    assert on_port == {"127.0.0.1"}, sockets
    open_to_all = sorted(
        (port, name) for address, port, name in sockets if address in ("*", "0.0.0.0", "[::]")
    )
    print(f"ports on all interfaces (GCS, raylet, agents; see RESULTS.md): {open_to_all}")


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(420)
def test_env_runners_land_on_the_node_offering_the_custom_resource(
    cluster: LocalCluster, tiny_bc_dir: Path, tmp_path: Path
) -> None:
    from ray.job_submission import JobStatus
    from ray.util.state import list_actors, list_nodes

    config = _write_config(
        tmp_path / "pinned.yaml",
        custom_resources_per_env_runner={ROLLOUT: 1},
        placement_timeout_s=60.0,
    )
    entry = (
        f"editorbot train rl --config {config} --bc-data {tiny_bc_dir} "
        f"--save-dir {tmp_path / 'run'} --stop-iters 1 --num-env-runners 2"
    )
    status, logs = _run_job(
        cluster, entry, during=lambda: _assert_job_server_on_loopback_only(cluster)
    )
    assert status == JobStatus.SUCCEEDED, logs[-3000:]

    nodes = list_nodes(address=cluster.dashboard)
    rollout_nodes = {n.node_id for n in nodes if n.resources_total.get(ROLLOUT, 0) > 0}
    head_nodes = {n.node_id for n in nodes if n.is_head_node}
    assert len(rollout_nodes) == 1 and rollout_nodes.isdisjoint(head_nodes)
    runners = list_actors(
        address=cluster.dashboard,
        filters=[("class_name", "=", "SingleAgentEnvRunner")],
        detail=True,
    )
    assert len(runners) == 2, runners  # the job's two remote env runners (now dead)
    for runner in runners:
        assert (runner.required_resources or {}).get(ROLLOUT) == 1  # the setting reached RLlib
        assert runner.node_id in rollout_nodes  # ... and Ray placed the runner by it


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(420)
def test_a_resource_no_node_offers_fails_the_job_with_a_clear_message(
    cluster: LocalCluster, tiny_bc_dir: Path, tmp_path: Path
) -> None:
    from ray.job_submission import JobStatus

    config = _write_config(
        tmp_path / "nowhere.yaml",
        custom_resources_per_env_runner={"nowhere": 1},
        placement_timeout_s=5.0,
    )
    entry = (
        f"editorbot train rl --config {config} --bc-data {tiny_bc_dir} "
        f"--save-dir {tmp_path / 'run'} --stop-iters 1 --num-env-runners 1"
    )
    status, logs = _run_job(cluster, entry)
    assert status == JobStatus.FAILED, logs[-3000:]
    # One line from editorbot (not a traceback, not a hang): what is needed, what exists.
    assert "need CPU=1, nowhere=1 in all, and after 5 s the cluster offers only nowhere=0" in logs
    assert "Traceback" not in logs


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(120)
def test_wait_for_resources_passes_what_fits_and_names_what_does_not(
    ray_session: object,
) -> None:
    from editorbot.training.ppo import PPOSettings, ppo_config, wait_for_resources

    def config(**changes: Any) -> Any:
        settings = dataclasses.replace(PPOSettings(), **changes)
        return ppo_config(settings, env_config={}, module=_tiny_module())

    wait_for_resources(config(num_env_runners=1), timeout_s=30.0)  # 1 CPU of the session's 2
    wait_for_resources(config(num_env_runners=0), timeout_s=0.1)  # nothing remote: no wait
    with pytest.raises(ParameterError, match=r"need CPU=3 in all.*offers only CPU=2"):
        wait_for_resources(config(num_env_runners=3), timeout_s=1.0)
    with pytest.raises(ParameterError, match=r"rollout=2 in all.*offers only rollout=0"):
        wait_for_resources(
            config(num_env_runners=2, custom_resources_per_env_runner={ROLLOUT: 1}),
            timeout_s=1.0,
        )
    with pytest.raises(ParameterError, match=r"need CPU=1, learner=1 in all.*only learner=0"):
        wait_for_resources(
            config(num_learners=1, custom_resources_per_learner={"learner": 1}), timeout_s=1.0
        )
    import ray

    # The placement groups of the failed waits were removed: both CPUs come free again
    # (removal is asynchronous; 30 s is far more than it takes).
    deadline = time.monotonic() + 30.0
    while ray.available_resources().get("CPU") != ray.cluster_resources().get("CPU"):
        assert time.monotonic() < deadline, ray.available_resources()
        time.sleep(0.2)


def _tiny_module() -> Any:
    from editorbot.training.ppo import load_run_config

    return load_run_config(CONFIG).module
