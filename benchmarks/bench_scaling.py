"""Sampling throughput with 0, 1, 2 env runners, learner updates/s with 0, 1, 2 learners, and
time from job submission to training.

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scaling.py [--steps N] [--no-job] \
        [--cluster] [--updates K] [--no-learners]

What to expect: env steps/s of the editing env sampled by RLlib (PPO's env runners, the debug
module, 4 envs per runner) with 0 runners (sampling in the driver: the named baseline, ratio
1.00) and with 1 and 2 remote runners, in the same process and a single-node Ray. With
``--cluster``, the same measurement again on a real two-node loopback cluster
(``tests/local_cluster.py``: head 1 CPU, worker 2 CPUs and ``{"rollout": 2}``), run as a Ray
job whose driver sits on the head while its runners are pinned to the worker with
``custom_resources_per_env_runner={"rollout": 1}``; the table gives each rate as a ratio to
the single-node 0-runner baseline of the same run, and says where the runners ran. Then (unless
``--no-job``) the seconds from ``JobSubmissionClient.submit_job`` to the job's BC row and to
its first PPO iteration in ``progress.jsonl``. Both nodes share this machine's cores: the
cluster rows show overhead and placement, not the speed-up of more machines.

Learners (unless ``--no-learners``): PPO + BC updates of the debug config (the
:class:`~editorbot.training.learner.EditorPPOLearner` with its BC and auxiliary terms) on one
fixed sampled batch, ``learner_group.update`` timed ``K`` times after a warm-up, with 0
learners (the local learner in the driver: the named baseline, ratio 1.00) and with 1 and 2
remote CPU learners (DDP over gloo; each learner takes ``train_batch_size`` steps per update,
so 2 learners learn twice the steps per update). The table gives updates/s and learned env
steps/s, each as a ratio to the baseline of the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
CONFIG = ROOT / "tune_configs" / "ppo_debug.yaml"
RUNNER_COUNTS = (0, 1, 2)
"""Remote env runners per measurement (0 = sampling in the driver: the baseline)."""
LEARNER_COUNTS = (0, 1, 2)
"""Remote learners per measurement (0 = the local learner in the driver: the baseline)."""
PIN = "rollout"
"""Custom resource of the loopback cluster's worker node (as cluster.yaml's rollout nodes)."""
RATES_TAG = "BENCH_RATES "
"""Prefix of the cluster job's result line in its logs (the JSON of ``cluster_rates``)."""
JOB_TIMEOUT_S = 900.0
"""[s] limit for one benchmark job on the loopback cluster (never wait forever)."""


def make_bc_data(out: Path) -> Path:
    from editorbot.datasets.demo import DemoConfig, generate
    from editorbot.datasets.song import SongConfig
    from editorbot.training import bc_data

    demo = out / "demo"
    generate(
        demo,
        n_tracks=2,
        seed=0,
        config=DemoConfig(song=SongConfig(min_seconds=20, max_seconds=30, sr=22050)),
    )
    raws = [bc_data.load_raw_track(p, demo) for p in sorted((demo / "truth").glob("*.json"))]
    tables, normalizer = bc_data.build_tables(raws)
    bc_data.write_bc_data(out / "bc", tables, normalizer, env_config={"window": 64})
    return out / "bc"


def sampling_rate(
    bc_dir: Path, n_runners: int, steps: int, pin: dict[str, float] | None = None
) -> tuple[float, list[str]]:
    """Env steps/s of ``sample()`` across all runners (remote ones in parallel), and the Ray
    node id of each runner (the driver's for 0 runners). ``pin``: custom resources per runner."""
    import ray

    from editorbot.training.ppo import load_run_config, ppo_config, wait_for_resources

    cfg = load_run_config(CONFIG)
    ppo = dataclasses.replace(
        cfg.ppo,
        num_env_runners=n_runners,
        bc_weight=0.0,
        custom_resources_per_env_runner=dict(pin or {}),
    )
    env_config = {**cfg.env, "tables": str(bc_dir / "tables"), "seed": 0}
    algo_cfg = ppo_config(ppo, env_config=env_config, module=cfg.module)
    wait_for_resources(algo_cfg, timeout_s=120.0)
    algo = algo_cfg.build_algo()
    try:
        group = algo.env_runner_group
        assert group is not None  # built by build_algo()
        per_runner = steps // max(n_runners, 1)

        def sample(runner):
            return sum(len(e) for e in runner.sample(num_timesteps=per_runner))

        local = n_runners == 0
        nodes = group.foreach_env_runner(
            lambda r: ray.get_runtime_context().get_node_id(), local_env_runner=local
        )
        _ = group.foreach_env_runner(sample, local_env_runner=local)  # warm-up (model, envs)
        start = time.perf_counter()
        counts = group.foreach_env_runner(sample, local_env_runner=local)
        return sum(counts) / (time.perf_counter() - start), list(nodes)
    finally:
        algo.stop()
        assert ray.is_initialized()


def learner_rate(bc_dir: Path, n_learners: int, updates: int) -> dict[str, float]:
    """Learner updates/s and learned env steps/s of PPO + BC with ``n_learners`` remote
    learners (0 = the local learner), on one batch sampled once by the driver's env runner."""
    import ray

    from editorbot.training.bc_data import load_expert_arrays
    from editorbot.training.ppo import load_run_config, ppo_config, wait_for_resources

    cfg = load_run_config(CONFIG)
    ppo = dataclasses.replace(cfg.ppo, num_env_runners=0, num_learners=n_learners,
                              vf_warmup_iters=0)  # fmt: skip
    env_config = {**cfg.env, "tables": str(bc_dir / "tables"), "seed": 0}
    expert = ray.put(load_expert_arrays(bc_dir / "episodes"))
    algo_cfg = ppo_config(ppo, env_config=env_config, module=cfg.module, expert=expert, seed=0)
    wait_for_resources(algo_cfg, timeout_s=120.0)
    algo = algo_cfg.build_algo()
    try:
        c = algo.config
        assert algo.env_runner is not None and c is not None  # num_env_runners=0: local
        episodes = algo.env_runner.sample(num_timesteps=c.total_train_batch_size)
        steps = sum(len(e) for e in episodes)

        def update() -> None:
            algo.learner_group.update(
                episodes=episodes, timesteps={"num_env_steps_sampled_lifetime": steps},
                num_epochs=c.num_epochs, minibatch_size=c.minibatch_size,
                shuffle_batch_per_epoch=c.shuffle_batch_per_epoch,
            )  # fmt: skip

        update()  # warm-up (DDP set-up, first allocations)
        start = time.perf_counter()
        for _ in range(updates):
            update()
        wall = time.perf_counter() - start
        return {"updates_per_s": updates / wall, "steps_per_s": updates * steps / wall,
                "steps_per_update": float(steps)}  # fmt: skip
    finally:
        algo.stop()


def cluster_rates(bc_dir: Path, steps: int) -> dict[str, Any]:
    """In a job on the loopback cluster: rates with runners pinned to the ``rollout`` node."""
    import ray

    ray.init(log_to_driver=False)  # the cluster of the job (RAY_ADDRESS)
    driver = ray.get_runtime_context().get_node_id()
    pinned = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get(PIN)]
    rates, on_pinned = {}, {}
    for n in RUNNER_COUNTS:
        rate, nodes = sampling_rate(bc_dir, n, steps, pin={PIN: 1} if n else None)
        rates[n] = rate
        on_pinned[n] = all(node in pinned and node != driver for node in nodes) if n else False
    return {"rates": rates, "runners_on_worker": on_pinned}


def run_on_cluster(bc_dir: Path, steps: int) -> dict[str, Any]:
    """Start the loopback cluster, run this script's ``--cluster-job`` mode as a Ray job on it,
    and return its ``cluster_rates`` (JSON keys are strings)."""
    from local_cluster import LocalCluster
    from ray.job_submission import JobStatus, JobSubmissionClient

    cluster = LocalCluster(head_cpus=1, worker_cpus=2, worker_resources={PIN: 2}).start()
    try:
        client = JobSubmissionClient(cluster.dashboard)
        entry = (
            f"{sys.executable} {Path(__file__).resolve()} --cluster-job "
            f"--bc-dir {bc_dir} --steps {steps}"
        )
        job_id = client.submit_job(
            entrypoint=entry, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}}
        )
        done = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while client.get_job_status(job_id) not in done:
            if time.monotonic() > deadline:
                client.stop_job(job_id)
                raise RuntimeError(f"cluster benchmark job still running after {JOB_TIMEOUT_S} s")
            time.sleep(1.0)
        logs = client.get_job_logs(job_id)
    finally:
        cluster.stop()
    lines = [line for line in logs.splitlines() if line.startswith(RATES_TAG)]
    if not lines:
        raise RuntimeError(f"cluster benchmark job gave no result; its log ends: {logs[-2000:]}")
    return dict(json.loads(lines[-1].removeprefix(RATES_TAG)))


def job_latency(bc_dir: Path, tmp: Path) -> dict[str, float]:
    """Seconds from submit_job to the BC row (iteration 0) and to PPO iteration 1."""
    from local_cluster import LocalCluster
    from ray.job_submission import JobSubmissionClient

    save = tmp / "job_run"
    cluster = LocalCluster().start()
    try:
        client = JobSubmissionClient(cluster.dashboard)
        entry = (
            f"editorbot train rl --config {CONFIG} --bc-data {bc_dir} --save-dir {save} "
            "--stop-iters 1 --num-env-runners 1"
        )
        start = time.perf_counter()
        client.submit_job(entrypoint=entry, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
        seen: dict[str, float] = {}
        while "first_iteration_sec" not in seen and time.perf_counter() - start < 300:
            rows = _rows(save / "progress.jsonl")
            if rows and "bc_row_sec" not in seen:
                seen["bc_row_sec"] = time.perf_counter() - start
            if any(r["iteration"] == 1 for r in rows):
                seen["first_iteration_sec"] = time.perf_counter() - start
            time.sleep(0.1)
        return seen
    finally:
        cluster.stop()


def _rows(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def _print_learners(learners: dict[int, dict[str, float]]) -> None:
    if not learners:
        return
    base = learners[0]
    print("| learners | env steps / update | updates/s | ratio | learned steps/s | ratio |")
    print("|---|---|---|---|---|---|")
    for n, r in learners.items():
        name = "0 (local, baseline)" if n == 0 else f"{n} remote CPU"
        print(
            f"| {name} | {r['steps_per_update']:.0f} | {r['updates_per_s']:.2f} | "
            f"{r['updates_per_s'] / base['updates_per_s']:.2f}× | {r['steps_per_s']:,.0f} | "
            f"{r['steps_per_s'] / base['steps_per_s']:.2f}× |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="env steps per measurement")
    parser.add_argument("--no-job", action="store_true", help="skip the job-submission timing")
    parser.add_argument(
        "--cluster", action="store_true", help="also measure on the two-node loopback cluster"
    )
    parser.add_argument("--updates", type=int, default=5, help="timed learner updates")
    parser.add_argument("--no-learners", action="store_true", help="skip the learner rates")
    parser.add_argument("--cluster-job", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bc-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray
    import torch

    torch.set_num_threads(1)
    if args.cluster_job:  # inside the Ray job that run_on_cluster submits
        print(RATES_TAG + json.dumps(cluster_rates(args.bc_dir, args.steps)), flush=True)
        return 0
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bc_dir = make_bc_data(tmp)
        from editorbot.training.local_ray import init_local

        init_local(2)
        try:
            rates = {n: sampling_rate(bc_dir, n, args.steps)[0] for n in RUNNER_COUNTS}
            learners = {} if args.no_learners else {
                n: learner_rate(bc_dir, n, args.updates) for n in LEARNER_COUNTS
            }  # fmt: skip
        finally:
            ray.shutdown()
        _print_learners(learners)
        base = rates[0]
        if not args.cluster:
            print("| env runners | env steps/s | ratio to 0 runners (baseline) |")
            print("|---|---|---|")
            for n, rate in rates.items():
                print(f"| {n} | {rate:,.0f} | {rate / base:.2f}× |")
        else:
            result = run_on_cluster(bc_dir, args.steps)
            c_rates = {int(k): float(v) for k, v in result["rates"].items()}
            placed = {int(k): v for k, v in result["runners_on_worker"].items()}
            print(
                "| env runners | single node steps/s | ratio to baseline | two-node loopback "
                "steps/s | ratio to baseline | cluster / single node | runners on worker node |"
            )
            print("|---|---|---|---|---|---|---|")
            for n in RUNNER_COUNTS:
                where = ("yes" if placed[n] else "NO") if n else "— (driver, head)"
                print(
                    f"| {n} | {rates[n]:,.0f} | {rates[n] / base:.2f}× | {c_rates[n]:,.0f} | "
                    f"{c_rates[n] / base:.2f}× | {c_rates[n] / rates[n]:.2f}× | {where} |"
                )
        if not args.no_job:
            print(json.dumps(job_latency(bc_dir, tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
