"""Ray job submission to a real two-node cluster on loopback (see ``tests/local_cluster.py``).

The cluster is started with ``ray start`` in its own process groups and temp dir, so it never
meets the session's in-process Ray (``conftest.ray_session``): this test does not call
``ray.init`` at all, it talks to the job server over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
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


ROOT = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load(CONFIG.read_text())
"""ppo_debug.yaml: the sizes the README's configs are shrunk to (module, batches, BC epochs)."""


def readme_cluster_commands() -> list[str]:
    """The README's cluster commands (its ``ray job submit`` lines and the ``edit`` after them),
    continuation lines joined, comments dropped."""
    text = (ROOT / "README.md").read_text()
    block = next(b for b in text.split("```bash")[1:] if "ray job submit" in b).split("```")[0]
    joined = block.replace("\\\n", " ")
    lines = [line.split("  #")[0].strip() for line in joined.splitlines()]
    return [" ".join(line.split()) for line in lines
            if line.startswith(("ray job submit", "editorbot edit"))]  # fmt: skip


def _shrunk(config: Path, out: Path, *, tune: dict[str, Any] | None = None) -> Path:
    """``config`` with only its sizes made tiny: ppo_debug.yaml's module, batches and BC epochs,
    at most one env runner, no GPU (none here), a short placement wait; ``tune`` replaces
    sweep sizes (trials, iterations)."""
    data = yaml.safe_load((ROOT / config).read_text())
    data["module"] = TINY["module"]
    sizes = ("train_batch_size", "minibatch_size", "num_epochs", "num_envs_per_env_runner",
             "bc_batch_size")  # fmt: skip
    data["ppo"].update({k: TINY["ppo"][k] for k in sizes})
    data["ppo"].update(num_env_runners=min(1, data["ppo"].get("num_env_runners", 0)),
                       placement_timeout_s=120.0)  # fmt: skip
    if data["ppo"].get("num_gpus_per_learner"):
        data["ppo"]["num_gpus_per_learner"] = 0.0
    data["bc"] = TINY["bc"]
    for key, value in (tune or {}).items():
        data["tune"][key] = {**data["tune"][key], **value} if isinstance(value, dict) else value
    out.write_text(yaml.safe_dump(data))
    return out


@pytest.fixture
def s3_everywhere(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The bucket's AWS variables in this process's environment, so the cluster's nodes (and
    with them the job drivers and trials), the job client and ``edit`` all have them, as
    every machine of a real cluster has its credentials."""
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    return s3


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(1200)
def test_the_readmes_job_submit_lines_run_on_a_two_node_cluster(
    s3_everywhere: Any, tiny_demo: Path, tiny_bc_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import pyarrow.fs as pafs

    from editorbot import storage

    commands = readme_cluster_commands()
    assert [c.split(" -- ")[-1].split()[:2] for c in commands] == [
        ["editorbot", "train"], ["editorbot", "tune"], ["editorbot", "edit"]
    ], commands  # fmt: skip
    raw = sorted((tiny_demo / "input").glob("*.wav"))[0]
    # Only the sizes and the placeholders change: the same commands, flags and storage URIs.
    placeholders = {
        "tune_configs/ppo_cluster.yaml": str(_shrunk(Path("tune_configs/ppo_cluster.yaml"),
                                                     tmp_path / "cluster.yaml")),
        "tune_configs/ppo_sweep.yaml": str(_shrunk(
            Path("tune_configs/ppo_sweep.yaml"), tmp_path / "sweep.yaml",
            tune={"num_samples": 1, "stop_iters": 1, "max_concurrent_trials": 1,
                  "scheduler": {"grace_period": 1}})),
        "--stop-iters 500": "--stop-iters 1",
        "/home/ubuntu/training_data": str(tiny_demo),
        "/home/ubuntu/bc_data": str(tiny_bc_dir),
        "RUN_BUCKET": s3_everywhere.bucket,
        "song.wav": str(raw),
        "edited.wav": str(tmp_path / "edited.wav"),
    }  # fmt: skip
    for old, new in placeholders.items():
        assert any(old in c for c in commands), f"README no longer says {old!r}"
        commands = [c.replace(old, new) for c in commands]

    # The nodes' environment (the job drivers' and trials'): this test's own staging cache.
    monkeypatch.setenv("EDITORBOT_CACHE", str(tmp_path / "cache"))
    # The head takes no work, as cluster.yaml's; the worker is a rollout and a learner node,
    # with a Ray temp dir (runtime-env caches) of its own, as another machine has.
    cluster = LocalCluster(head_cpus=0, worker_cpus=3, worker_resources={"rollout": 1,
                           "learner": 1}, worker_temp_dir=True).start()  # fmt: skip
    # README's `export RAY_ADDRESS=http://127.0.0.1:8265`; token authentication is off on
    # this test cluster (tests/local_cluster.py), so RAY_AUTH_MODE=token is not exported.
    env = {**cluster.env, "RAY_ADDRESS": cluster.dashboard}
    try:
        for command in commands[:2]:
            done = subprocess.run(shlex.split(command), cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=900)  # fmt: skip
            assert done.returncode == 0, f"{command}\n{(done.stdout + done.stderr)[-4000:]}"
    finally:
        cluster.stop()
    edit = subprocess.run(shlex.split(commands[2]), env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert edit.returncode == 0, f"{commands[2]}\n{(edit.stdout + edit.stderr)[-4000:]}"

    bucket = f"s3://{s3_everywhere.bucket}"
    for written in ("rl_model/best/editorbot_checkpoint.json", "rl_model/progress.jsonl",
                    "rl_model/checkpoints/iter_0001"):  # fmt: skip
        assert storage.exists(f"{bucket}/{written}"), written
    # The sweep's one trial ran the train-rl run: its best/ is in the bucket too.
    fs, root = storage.filesystem(f"{bucket}/tune/ppo_sweep")
    names = [
        i.path[len(root) + 1 :] for i in fs.get_file_info(pafs.FileSelector(root, recursive=True))
    ]
    assert any(n.endswith("/best/editorbot_checkpoint.json") for n in names), names
    assert (tmp_path / "edited.wav").stat().st_size > 0
    assert (tmp_path / "edited.decisions.json").is_file()
