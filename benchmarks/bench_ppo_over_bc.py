"""Does PPO improve the greedy policy over its BC start on held-out tracks? (issue 5)

Runs ``editorbot train rl``'s :func:`~editorbot.training.rl_train.train_rl` once per seed on one
``editorbot bc-data`` folder, with the demo's run config (:func:`editorbot.demo_pipeline.
rl_run_config`) and a three-way split by track: training, validation (chooses the BC epoch and
``best/``) and test (only reported). The baseline is each run's own BC start (iteration 0), in
the same process and on the same split.

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ppo_over_bc.py \\
        --bc-data demo_output/bc_data --out /tmp/ppo_over_bc --seeds 0 1 2 --iters 60

What to expect: per seed, ``OUT/seed_N/`` (the run folder, with ``progress.jsonl`` and
``curves.png``) and one line "seed N: BC val/test → best/ val/test (iteration, minutes)";
``OUT/summary.json`` and ``OUT/agreement.png`` (validation and test agreement of every seed
against the iteration, 0 = BC).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bc-data", type=Path, required=True, help="`editorbot bc-data` folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="split + init")
    parser.add_argument("--iters", type=int, default=60, help="PPO iterations per seed")
    parser.add_argument("--validation-fraction", type=float, default=0.34)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray

    from editorbot.training.local_ray import init_local

    init_local(2)
    try:
        summary = [_one(args, seed) for seed in args.seeds]
    finally:
        ray.shutdown()
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    _plot(args.out, args.seeds)
    return 0


def _one(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    from editorbot import demo_pipeline as dp
    from editorbot.training.rl_train import train_rl

    cfg = dataclasses.replace(
        dp.rl_run_config(dp.DemoSettings()),
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
        seed=seed,
    )
    save = args.out / f"seed_{seed}"
    start = time.perf_counter()
    result = train_rl(cfg, bc_dir=args.bc_data, save_dir=save, stop_iters=args.iters,
                      checkpoint_freq=args.iters)  # fmt: skip
    minutes = (time.perf_counter() - start) / 60.0
    bc, best = result["bc"], result["best"]
    print(f"seed {seed}: BC val {bc['val']:.3f} test {bc['test']:.3f} -> best/ (iteration "
          f"{best['iteration']}) val {best['val']:.3f} test {best['test']:.3f}; "
          f"{minutes:.1f} min")  # fmt: skip
    return {"seed": seed, "minutes": minutes, **result}


def _plot(out: Path, seeds: list[int]) -> None:
    from editorbot.evaluation.plots import _pyplot, _save

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
    for seed in seeds:
        rows = [json.loads(x) for x in (out / f"seed_{seed}" / "progress.jsonl").open()]
        for ax, key in zip(axes, ("val_type_agreement", "test_type_agreement"), strict=True):
            ax.plot([r["iteration"] for r in rows], [r[key] for r in rows], label=f"seed {seed}")
            ax.set_title(key.replace("_", " "), fontsize=9)
            ax.set_xlabel("PPO iteration (0 = BC start)", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out / "agreement.png")


if __name__ == "__main__":
    sys.exit(main())
