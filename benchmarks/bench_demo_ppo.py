"""The demo's RL stage under several PPO settings, in turn, on one demo output: env steps, wall
time and held-out agreement side by side.

How to run: first ``make demo DEMO_ARGS="--out OUT"`` (or any ``editorbot demo`` output), then
``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_demo_ppo.py --demo OUT [--variants before
now] [--seeds 0 1]``, from the repository root.

What it measures: for each variant (PPO batch / envs / minibatch / iterations, the rest of the
demo's RL config unchanged) and seed, ``demo_pipeline.train_rl`` on ``OUT/bc_data`` (BC
pretraining, then PPO + BC), then the demo's evaluation of ``best/`` on ``OUT/data/test`` against
``OUT/labels/test``. Reported per run: env steps sampled by PPO, PPO wall seconds (every PPO
iteration: sampling, learning and the validation pass), and of that the sampling + learning
seconds, env steps per PPO wall second, the best validation agreement, and held-out type
accuracy. The first variant named is the baseline of the ratios. Runs are taken variant by
variant within each seed, in one process and one local Ray instance, so they share the load.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS: dict[str, dict[str, int]] = {
    # The demo when issue 15 was filed: 40 iterations of 512 steps from 4 envs, minibatch 64.
    "before": {"ppo_batch": 512, "ppo_envs": 4, "ppo_minibatch": 64, "ppo_iters": 40},
    # The demo's current settings (DemoSettings defaults).
    "now": {},
    # Larger iterations: the per-iteration costs (validation, RLlib's bookkeeping) amortised.
    "b2048": {"ppo_batch": 2048, "ppo_envs": 32, "ppo_minibatch": 256, "ppo_iters": 40},
    "b4096": {"ppo_batch": 4096, "ppo_envs": 32, "ppo_minibatch": 512, "ppo_iters": 20},
    "b4096e64": {"ppo_batch": 4096, "ppo_envs": 64, "ppo_minibatch": 512, "ppo_iters": 20},
    # Two remote env runners sampling at once (the learner waits in the driver meanwhile).
    "b4096r2": {
        "ppo_batch": 4096,
        "ppo_envs": 16,
        "ppo_minibatch": 512,
        "ppo_iters": 20,
        "ppo_runners": 2,
    },
}
"""[name -> DemoSettings overrides] the PPO settings this benchmark can run."""


def run_variant(demo: Path, name: str, seed: int, work: Path) -> dict[str, Any]:
    """One RL stage with the overrides of ``name``; returns its row."""
    from editorbot import demo_pipeline as dp

    s = dataclasses.replace(dp.DemoSettings(), seed=seed, **VARIANTS[name])
    save = work / f"{name}_s{seed}"
    start = time.perf_counter()
    best = dp.train_rl(demo / "bc_data", save, s)
    stage = time.perf_counter() - start
    rows = [json.loads(x) for x in (save / "progress.jsonl").read_text().splitlines()]
    ppo = [r for r in rows if r["iteration"] > 0]
    report = dp.evaluate(demo / "data" / "test", demo / "labels" / "test", [best], work / "eval")
    steps = sum(int(r.get("env_steps") or 0) for r in ppo)
    wall = sum(float(r["wall_sec"]) for r in ppo)
    return {
        "variant": name,
        "seed": seed,
        **VARIANTS[name],
        "env_steps": steps,
        "ppo_wall_s": round(wall, 1),
        "ppo_train_s": round(sum(float(r.get("train_sec") or 0.0) for r in ppo), 1),
        "steps_per_s": round(steps / wall, 1),
        "stage_s": round(stage, 1),
        "best_iteration": json.loads((best / "editorbot_checkpoint.json").read_text())[
            "validation"
        ]["iteration"],
        "best_val": round(max(float(r["val_type_agreement"]) for r in rows), 3),
        "bc_val": round(float(rows[0]["val_type_agreement"]), 3),
        "heldout_type_acc": round(float(_rl_type_accuracy(report)), 3),
    }


def _rl_type_accuracy(report: dict[str, Any]) -> float:
    """The held-out type accuracy of the one checkpoint the report scored."""
    from editorbot.evaluation.baselines import BASELINES

    systems = report["systems"]
    name = next(k for k in systems if k not in BASELINES)
    return float(systems[name]["type_accuracy"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo", type=Path, required=True, help="an `editorbot demo` output")
    parser.add_argument("--variants", nargs="+", default=["before", "now"], choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if not (args.demo / "bc_data").is_dir():
        print(f"{args.demo}: no bc_data/; run `make demo DEMO_ARGS=\"--out {args.demo}\"` first",
              file=sys.stderr)  # fmt: skip
        return 1
    import torch

    from editorbot.training.local_ray import local_ray

    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, local_ray(None):
        for seed in args.seeds:
            for name in args.variants:
                rows.append(run_variant(args.demo, name, seed, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
    base = {r["seed"]: r for r in rows if r["variant"] == args.variants[0]}
    print("\n| variant | seed | env steps | PPO wall s | steps/s | × steps | × wall | best val | "
          "held-out |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        b = base[r["seed"]]
        print(f"| {r['variant']} | {r['seed']} | {r['env_steps']:,} | {r['ppo_wall_s']} | "
              f"{r['steps_per_s']} | {r['env_steps'] / b['env_steps']:.2f} | "
              f"{r['ppo_wall_s'] / b['ppo_wall_s']:.2f} | {r['best_val']} | "
              f"{r['heldout_type_acc']} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
