"""PPO training throughput: env steps/s of whole ``algo.train()`` iterations (sample + learn).

How to run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ppo_train.py [--batch 1024]
[--envs 16] [--minibatch 128] [--iters 4] [--module tiny]``, from the repository root. To time
an older tree with the same settings, run this file from a clone of it (its ``.venv`` imports
that clone's editorbot; ``tests/env_tables.py`` is read from the current folder).

What it measures: the demo's PPO settings (``demo_pipeline.rl_run_config``: lr 3e-4, one epoch,
the driver's local env runner) without the BC loss and the value warm-up, on 8 synthetic
256-beat tracks, one torch thread; one warm-up iteration, then ``--iters`` timed. Prints one JSON
line with the env steps/s and RLlib's timers of the last iteration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=1024, help="env steps per iteration")
    parser.add_argument("--envs", type=int, default=16, help="envs per env runner")
    parser.add_argument("--minibatch", type=int, default=128, help="SGD minibatch [steps]")
    parser.add_argument("--iters", type=int, default=4, help="timed iterations")
    parser.add_argument("--module", choices=("tiny", "compact"), default="tiny")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path.cwd() / "tests"))
    import ray
    import torch
    from env_tables import make_table

    from editorbot.envs.track_table import save_tables
    from editorbot.models.rl_module import ModuleConfig
    from editorbot.training.local_ray import init_local
    from editorbot.training.ppo import PPOSettings, ppo_config

    torch.set_num_threads(1)
    init_local(2)
    settings = PPOSettings(lr=3e-4, vf_warmup_iters=0, train_batch_size=args.batch,
                           minibatch_size=args.minibatch, num_epochs=1, num_env_runners=0,
                           num_envs_per_env_runner=args.envs, bc_weight=0.0)  # fmt: skip
    module = getattr(ModuleConfig, args.module)()
    with tempfile.TemporaryDirectory() as tmp:
        save_tables(tmp, [make_table(i, n_phrases=16) for i in range(8)], None)
        algo = ppo_config(settings, env_config={"tables": tmp}, module=module, seed=0).build_algo()
        algo.train()  # warm-up
        start, steps, result = time.perf_counter(), 0, {}
        for _ in range(args.iters):
            result = algo.train()
            steps += result["env_runners"]["num_env_steps_sampled"]
        wall = time.perf_counter() - start
        algo.stop()
    ray.shutdown()
    timers = {k: round(v, 3) for k, v in result.get("timers", {}).items() if isinstance(v, float)}
    print(json.dumps({**vars(args), "steps": steps, "wall_s": round(wall, 2),
                      "steps_per_s": round(steps / wall, 1), "load": os.getloadavg()[0],
                      "timers": timers}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
