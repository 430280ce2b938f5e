"""A run on a node that cannot see the driver's files, with its results in an S3 bucket.

The cluster (``tests/local_cluster.py``) is a head with no CPU (as ``cluster.yaml``'s: Tune trials
and Train workers then run on workers too) and a worker with 3 CPUs that advertises ``rollout`` and
``learner``, like ``cluster.yaml``'s rollout and learner nodes. The worker runs in its own mount
namespace with an empty tmpfs over pytest's temporary folders (the test's data, the driver's
staging folder) and over the head's Ray temp dir: whatever reaches it by a driver path fails
there. Storage is moto's S3 server on loopback (``tests/s3_server.py``); every process gets the
standard AWS variables, as on a cluster with a bucket. Commands run as a user runs them: the
``editorbot`` CLI with ``RAY_ADDRESS`` set, then ``edit`` on the bucket's ``best/`` with no Ray
at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from local_cluster import LocalCluster
from s3_server import S3Server

pytestmark = [pytest.mark.ray, pytest.mark.slow]

CONFIG = Path(__file__).resolve().parents[1] / "tune_configs" / "ppo_debug.yaml"
EDITORBOT = str(Path(sys.executable).with_name("editorbot"))
WORKER = {"rollout": 1, "learner": 1}
"""The worker node's custom resources: env runners ask for ``rollout``, learners ``learner``."""


@pytest.fixture(scope="module")
def cluster(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # pytest's temporary folders hold the test's data and the driver's staging cache; the
    # head's Ray temp dir is masked too (LocalCluster adds it). Not all of /tmp: the checkout
    # and its virtualenv, which the worker runs from, may live there (a CI clone does).
    c = LocalCluster(
        head_cpus=0, worker_cpus=3, worker_resources=WORKER,
        worker_masks=(str(tmp_path_factory.getbasetemp()),), worker_env=s3.env,
        worker_ip="127.0.0.2",
    ).start()  # fmt: skip
    try:
        yield c
    finally:
        c.stop()


def _cli(args: list[str], env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EDITORBOT, *args], env=env, capture_output=True, text=True, timeout=timeout_s
    )


def _driver_env(cluster: LocalCluster, s3: S3Server, tmp_path: Path) -> dict[str, str]:
    """The driver's environment: the cluster's address, the bucket's variables, and a staging
    cache under ``tmp_path`` (masked on the worker, so staging files cannot leak to it)."""
    return {**cluster.env, **s3.env, "RAY_ADDRESS": cluster.address,
            "EDITORBOT_CACHE": str(tmp_path / "cache")}  # fmt: skip


def _pinned_config(path: Path, **sections: Any) -> Path:
    """``ppo_debug.yaml`` with one env runner and one learner, both pinned to the worker, and
    ``sections`` added (``tune=...``)."""
    data = {**yaml.safe_load(CONFIG.read_text()), **sections}
    data["ppo"].update(
        num_env_runners=1,
        custom_resources_per_env_runner={"rollout": 1},
        num_learners=1,
        custom_resources_per_learner={"learner": 1},
        placement_timeout_s=120.0,
    )
    path.write_text(yaml.safe_dump(data))
    return path


def _on_worker(cluster: LocalCluster, code: str) -> Any:
    """Run ``code`` (an expression) in a task on the worker node; its value, as JSON."""
    script = (
        "import json, os, ray\n"
        f"ray.init(address={cluster.address!r}, log_to_driver=False)\n"
        "@ray.remote(num_cpus=0, resources={'learner': 0.01})\n"
        f"def probe():\n    return {code}\n"
        "print(json.dumps(ray.get(probe.remote())))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=cluster.env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _assert_pinned_actors_ran_on_the_worker(cluster: LocalCluster, since: set[str]) -> None:
    """Every actor (not in ``since``) that asked for ``rollout`` or ``learner`` ran on the
    worker node, and there was at least one of each."""
    from ray.util.state import list_actors, list_nodes

    nodes = list_nodes(address=cluster.dashboard)
    worker = {n.node_id for n in nodes if n.resources_total.get("learner", 0) > 0}
    actors = [
        a
        for a in list_actors(address=cluster.dashboard, detail=True, limit=1000)
        if a.actor_id not in since
    ]

    def asks_for(actor: Any, name: str) -> bool:  # in a placement group: "learner_group_<id>"
        asked = actor.required_resources or {}
        return any(k == name or k.startswith(f"{name}_group_") for k in asked)

    for name in ("rollout", "learner"):
        placed = [a for a in actors if asks_for(a, name)]
        assert placed, f"no actor asked for {name}: {actors}"
        assert {a.node_id for a in placed} <= worker, name


def _actor_ids(cluster: LocalCluster) -> set[str]:
    from ray.util.state import list_actors

    return {a.actor_id for a in list_actors(address=cluster.dashboard, limit=1000)}


def _bucket_files(s3: S3Server, prefix: str) -> set[str]:
    import pyarrow.fs as pafs

    from editorbot import storage

    with pytest.MonkeyPatch.context() as mp:
        for key, value in s3.env.items():
            mp.setenv(key, value)
        fs, root = storage.filesystem(f"s3://{s3.bucket}/{prefix}")
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    return {i.path[len(root) + 1 :] for i in infos if i.type == pafs.FileType.File}


@pytest.mark.timeout(1200)
def test_train_rl_with_runner_and_learner_on_a_node_blind_to_the_driver_ends_in_the_bucket(
    cluster: LocalCluster, s3: S3Server, tiny_demo: Path, tiny_bc_dir: Path, tmp_path: Path
) -> None:
    # The premise: the worker node does not see the test's files (under pytest's temp folders).
    assert _on_worker(cluster, f"os.path.exists({str(tiny_bc_dir)!r})") is False
    assert tiny_bc_dir.is_dir()

    env = _driver_env(cluster, s3, tmp_path)
    before = _actor_ids(cluster)
    run_uri = f"s3://{s3.bucket}/rl_run"
    config = _pinned_config(tmp_path / "pinned.yaml")
    train = _cli(
        ["train", "rl", "--config", str(config), "--bc-data", str(tiny_bc_dir),
         "--save-dir", run_uri, "--stop-iters", "2"],
        env, timeout_s=900,
    )  # fmt: skip
    assert train.returncode == 0, (train.stdout + train.stderr)[-4000:]

    _assert_pinned_actors_ran_on_the_worker(cluster, before)

    files = _bucket_files(s3, "rl_run")
    assert {"best/editorbot_checkpoint.json", "best/normalizer.json"} <= files, sorted(files)
    assert any(f.startswith("best/rl_module/") for f in files), sorted(files)
    assert any(f.startswith("checkpoints/iter_0002/") for f in files), sorted(files)
    assert "progress.jsonl" in files

    _assert_edit_reads_from_the_bucket(f"{run_uri}/best", s3, tiny_demo, tmp_path)


def _assert_edit_reads_from_the_bucket(
    best_uri: str, s3: S3Server, demo: Path, tmp_path: Path
) -> None:
    """``edit`` with ``--checkpoint`` on the bucket: no Ray, no local copy of the run."""
    import soundfile as sf

    raw = sorted((demo / "input").glob("*.wav"))[0]
    out = tmp_path / "edited.wav"
    edit = _cli(
        ["edit", str(raw), "--checkpoint", best_uri, "--output", str(out)],
        {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **s3.env,
         "EDITORBOT_CACHE": str(tmp_path / "edit_cache")},
        timeout_s=300,
    )  # fmt: skip
    assert edit.returncode == 0, (edit.stdout + edit.stderr)[-4000:]
    assert sf.info(str(out)).frames > 0
    assert out.with_suffix(".decisions.json").is_file()


@pytest.mark.timeout(1200)
def test_tune_trials_run_on_the_blind_node_and_keep_their_results_in_the_bucket(
    cluster: LocalCluster, s3: S3Server, tiny_demo: Path, tiny_bc_dir: Path, tmp_path: Path
) -> None:
    env = _driver_env(cluster, s3, tmp_path)
    before = _actor_ids(cluster)
    sweep = _pinned_config(
        tmp_path / "sweep.yaml",
        tune={"name": "sweep", "num_samples": 2, "stop_iters": 2, "max_concurrent_trials": 1},
    )
    tune = _cli(
        ["tune", str(sweep), "--bc-data", str(tiny_bc_dir), "--storage", f"s3://{s3.bucket}/tune"],
        env, timeout_s=900,
    )  # fmt: skip
    assert tune.returncode == 0, (tune.stdout + tune.stderr)[-4000:]
    _assert_pinned_actors_ran_on_the_worker(cluster, before)
    files = _bucket_files(s3, "tune/sweep")
    trials = {f.split("/")[0] for f in files if f.startswith("rl_trial")}
    assert len(trials) == 2, sorted(files)
    for trial in trials:  # each trial's checkpoints and its train-rl best/ are in the bucket
        state = [f for f in files if f.startswith(f"{trial}/checkpoint_")
                 and f.endswith("editorbot_trial.json")]  # fmt: skip
        assert len(state) >= 1, sorted(files)
        assert f"{trial}/best/editorbot_checkpoint.json" in files, sorted(files)
    _assert_edit_reads_from_the_bucket(
        f"s3://{s3.bucket}/tune/sweep/{min(trials)}/best", s3, tiny_demo, tmp_path
    )


@pytest.mark.timeout(1200)
def test_train_supervised_writes_best_from_the_blind_node_to_the_bucket(
    cluster: LocalCluster, s3: S3Server, tiny_demo: Path, tmp_path: Path
) -> None:
    env = _driver_env(cluster, s3, tmp_path)
    run_uri = f"s3://{s3.bucket}/supervised"
    train = _cli(
        ["train", "supervised", "--data-dir", str(tiny_demo), "--save-dir", run_uri, "--tiny",
         "--epochs", "1", "--steps-per-epoch", "2", "--num-workers", "1"],
        env, timeout_s=900,
    )  # fmt: skip
    assert train.returncode == 0, (train.stdout + train.stderr)[-4000:]
    files = _bucket_files(s3, "supervised")
    assert "best/editorbot_checkpoint.json" in files, sorted(files)
    assert any(f.startswith("ray_results/") for f in files), sorted(files)
    _assert_edit_reads_from_the_bucket(f"{run_uri}/best", s3, tiny_demo, tmp_path)
