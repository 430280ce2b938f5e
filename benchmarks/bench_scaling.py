"""Sampling throughput with 0, 1, 2 env runners, and time from job submission to training.

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scaling.py [--steps N] [--no-job]

What to expect: env steps/s of the editing env sampled by RLlib (PPO's env runners, the debug
module, 4 envs per runner) with 0 runners (sampling in the driver: the named baseline, ratio
1.00) and with 1 and 2 remote runners, in the same process and Ray instance; then, on a real
two-node loopback cluster (``tests/local_cluster.py``), the seconds from
``JobSubmissionClient.submit_job`` to the job's BC row and to its first PPO iteration in
``progress.jsonl``. Two cores shared with the driver: 2 runners cannot be 2× here.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
CONFIG = ROOT / "tune_configs" / "ppo_debug.yaml"


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


def sampling_rate(bc_dir: Path, n_runners: int, steps: int) -> float:
    """Env steps/s of ``sample()`` across all runners (remote ones in parallel)."""
    import ray

    from editorbot.training.ppo import load_run_config, ppo_config

    cfg = load_run_config(CONFIG)
    ppo = dataclasses.replace(cfg.ppo, num_env_runners=n_runners, bc_weight=0.0)
    env_config = {**cfg.env, "tables": str(bc_dir / "tables"), "seed": 0}
    algo = ppo_config(ppo, env_config=env_config, module=cfg.module).build_algo()
    try:
        group = algo.env_runner_group
        per_runner = steps // max(n_runners, 1)

        def sample(runner):
            return sum(len(e) for e in runner.sample(num_timesteps=per_runner))

        local = n_runners == 0
        _ = group.foreach_env_runner(sample, local_env_runner=local)  # warm-up (model, envs)
        start = time.perf_counter()
        counts = group.foreach_env_runner(sample, local_env_runner=local)
        return sum(counts) / (time.perf_counter() - start)
    finally:
        algo.stop()
        assert ray.is_initialized()


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="env steps per measurement")
    parser.add_argument("--no-job", action="store_true", help="skip the job-submission timing")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bc_dir = make_bc_data(tmp)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            rates = {n: sampling_rate(bc_dir, n, args.steps) for n in (0, 1, 2)}
        finally:
            ray.shutdown()
        print("| env runners | env steps/s | ratio to 0 runners (baseline) |")
        print("|---|---|---|")
        for n, rate in rates.items():
            print(f"| {n} | {rate:,.0f} | {rate / rates[0]:.2f}× |")
        if not args.no_job:
            print(json.dumps(job_latency(bc_dir, tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
