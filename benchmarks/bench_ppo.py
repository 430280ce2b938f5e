"""PPO sampling throughput with vectorised envs, as a ratio to one env per runner, same process.

How to run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ppo.py [--steps N]
[--envs 1 4 8 16] [--append]``

What to expect: RLlib's per-step overhead (connectors, episode bookkeeping, one module forward
per step) dominates a 1-env runner; with ``num_envs_per_env_runner`` = k the module runs once per
k env steps on a batch of k, so sampled env steps/s grow with k until the forward or the envs
dominate. The sampler is the driver's local env runner (``num_env_runners`` = 0), as on the
2-core machine; the module is ``ModuleConfig.compact()`` (the run default; ``--module tiny``
or ``default`` for the seed's 512-wide one).
``--append`` adds a section to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from env_tables import make_table

from editorbot.envs.track_table import save_tables
from editorbot.models.rl_module import ModuleConfig
from editorbot.training.ppo import PPOSettings, ppo_config


def _throughput(tables: str, n_envs: int, steps: int, module: ModuleConfig) -> float:
    """Env steps/s of the local env runner's ``sample`` with ``n_envs`` vectorised envs."""
    settings = PPOSettings(num_env_runners=0, num_envs_per_env_runner=n_envs,
                           train_batch_size=steps, bc_weight=0.0)  # fmt: skip
    algo = ppo_config(settings, env_config={"tables": tables}, module=module, seed=0).build_algo()
    try:
        runner = algo.env_runner_group.local_env_runner
        runner.sample(num_timesteps=4 * n_envs, random_actions=False)  # warm-up: first forward
        start = time.perf_counter()
        episodes = runner.sample(num_timesteps=steps, random_actions=False)
        elapsed = time.perf_counter() - start
        return sum(len(e) for e in episodes) / elapsed
    finally:
        algo.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2048, help="env steps per measurement")
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--module", choices=("tiny", "compact", "default"), default="compact")
    parser.add_argument("--append", action="store_true", help="append to RESULTS.md")
    args = parser.parse_args(argv)
    import ray
    import torch

    torch.set_num_threads(1)
    from editorbot.training.local_ray import init_local

    init_local(2)
    module = ModuleConfig() if args.module == "default" else getattr(ModuleConfig, args.module)()
    with tempfile.TemporaryDirectory() as tmp:
        save_tables(tmp, [make_table(i, n_phrases=16) for i in range(4)], None)
        counts = [1, *[k for k in args.envs if k != 1]]  # the baseline first
        rates = {k: _throughput(tmp, k, args.steps, module) for k in counts}
    ray.shutdown()
    rows = [f"| {k} | {r:,.0f} | {r / rates[1]:.2f} |" for k, r in rates.items()]
    load = os.getloadavg()[0]
    text = (
        f"\n## bench_ppo — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}\n\n"
        f"PPO sampling (local env runner, `num_env_runners` 0), {args.steps} env steps per "
        f"measurement, `ModuleConfig.{args.module}` ({dataclasses.asdict(module)['hidden']} "
        f"hidden), one torch thread, 256-beat synthetic tracks; load average {load:.1f} on "
        f"{os.cpu_count()} cores (the ratio is the comparable number).\n\n"
        "| num_envs_per_env_runner | env steps/s | ratio to 1 env |\n|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    print(text)
    if args.append:
        with open(Path(__file__).with_name("RESULTS.md"), "a") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
