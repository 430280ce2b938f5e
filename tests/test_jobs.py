"""Ray job submission to a real two-node cluster on loopback (see ``tests/local_cluster.py``).

The cluster is started with ``ray start`` in its own process groups and temp dir, so it never
meets the session's in-process Ray (``conftest.ray_session``): this test does not call
``ray.init`` at all, it talks to the job server over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from local_cluster import LocalCluster

CONFIG = Path(__file__).resolve().parents[1] / "tune_configs" / "ppo_debug.yaml"


@pytest.fixture(scope="module")
def bc_dir(tiny_bc_dir: Path) -> Path:
    return tiny_bc_dir


def _non_loopback_ip() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing interface
            ip = str(s.getsockname()[0])
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(420)
def test_job_trains_on_a_two_node_cluster(bc_dir: Path, tmp_path: Path) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    save = tmp_path / "run"
    cluster = LocalCluster(head_cpus=1, worker_cpus=1)
    cluster.start()
    try:
        assert cluster.alive_nodes() == 2
        _assert_dashboard_on_loopback_only(cluster.dashboard_port)
        client = JobSubmissionClient(cluster.dashboard)
        # One remote env runner: with 1 CPU per node, the cluster places it wherever a CPU is
        # free, while the driver (the job entrypoint) runs on the head.
        entry = (
            f"editorbot train rl --config {CONFIG} --bc-data {bc_dir} --save-dir {save} "
            "--stop-iters 1 --num-env-runners 1"
        )
        submitted = time.monotonic()
        job_id = client.submit_job(
            entrypoint=entry, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}}
        )
        status = _wait(client, job_id, timeout_sec=300)
        logs = client.get_job_logs(job_id)
        assert status == JobStatus.SUCCEEDED, logs[-3000:]
        assert "best: validation type agreement" in logs  # the command's last line
        print(f"job submitted → finished in {time.monotonic() - submitted:.1f} s")
    finally:
        cluster.stop()
    rows = [json.loads(line) for line in (save / "progress.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1]  # BC-only row, then the PPO iteration
    assert (save / "checkpoints" / "iter_0001" / "learner_group").is_dir()
    meta = json.loads((save / "best" / "editorbot_checkpoint.json").read_text())
    assert meta["kind"] == "rl" and meta["run_config"]["ppo"]["num_env_runners"] == 1


def _wait(client: object, job_id: str, timeout_sec: float) -> object:
    from ray.job_submission import JobStatus

    deadline = time.monotonic() + timeout_sec
    while time.monotonic() < deadline:
        status = client.get_job_status(job_id)  # type: ignore[attr-defined]
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return status
        time.sleep(1.0)
    client.stop_job(job_id)  # type: ignore[attr-defined]
    raise AssertionError(f"job {job_id} still running after {timeout_sec} s")


def _assert_dashboard_on_loopback_only(port: int) -> None:
    """The job server answers on 127.0.0.1 and refuses the machine's other address."""
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    ip = _non_loopback_ip()
    if ip is None:
        return  # no other interface to test against
    with pytest.raises(OSError), socket.create_connection((ip, port), timeout=5):
        pass
