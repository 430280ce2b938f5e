"""``editorbot tune``: a Ray Tune sweep (or a single run) of the RL agent from one YAML file.

How to run::

    editorbot tune tune_configs/ppo_debug.yaml --data-dir DEMO            # one trial, minutes
    editorbot tune tune_configs/ppo_sweep.yaml --bc-data BC --storage runs/tune
    editorbot tune tune_configs/ppo_sweep.yaml --bc-data BC --storage runs/tune --resume

What to expect: the experiment under ``STORAGE/NAME`` (``NAME`` = the file's ``tune.name``),
then a table of trials sorted by the sweep's metric and the best checkpoint's path. ``--resume``
continues an interrupted sweep and re-runs errored trials from their last checkpoints.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from editorbot.cli import run_module
from editorbot.errors import EditorbotError
from editorbot.storage import RunStorage, as_location, join

logger = logging.getLogger(__name__)

NAME = "tune"
HELP = "run a Ray Tune sweep of the RL agent from a YAML file (tune_configs/*.yaml)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="sweep YAML (a run config + optional tune:)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="training data with truth/ labels (default: generated demo data under --storage)",
    )
    parser.add_argument("--bc-data", type=Path, help="prebuilt `editorbot bc-data` folder")
    parser.add_argument(
        "--storage",
        type=as_location,
        default=Path("tune_results"),
        help="folder or storage URI (s3://BUCKET/tune) of experiment directories "
        "(default ./tune_results)",
    )
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep")


def run(args: argparse.Namespace) -> int:
    from editorbot.training.tune_run import load_sweep, results_table, run_sweep

    store = RunStorage.open(args.storage)  # an unusable location stops here, before Ray
    sweep = load_sweep(args.config)
    if args.data_dir is None and args.bc_data is None:
        args.data_dir = _demo_data(store.local / "demo_data")
    if sweep.sweep.trainable == "supervised":
        data = args.data_dir
    else:
        data = args.bc_data or _build_bc_data(args, sweep.run.env, store.local)
    grid = run_sweep(sweep, data=data, storage=args.storage, resume=args.resume)
    rows = results_table(grid, sweep.sweep.metric, sweep.sweep.mode, args.storage)
    _print_table(rows, sweep.sweep.metric, sweep.sweep.search_space)
    errored = [r for r in rows if r["status"] == "ERROR"]
    if errored or not rows or not rows[0]["checkpoint"]:
        raise EditorbotError(
            f"{len(errored)} of {len(rows)} trials failed (details under "
            f"{join(args.storage, sweep.sweep.name)}); fix and re-run with --resume"
        )
    print(f"best checkpoint: {rows[0]['checkpoint']}")
    return 0


def _demo_data(out: Path) -> Path:
    """Six short radio-style demo pairs (generated once, reused by --resume): the embedded data
    a sweep runs on when no --data-dir or --bc-data is given."""
    from editorbot.datasets.demo import DemoConfig, generate
    from editorbot.datasets.song import SongConfig

    if not (out / "truth").is_dir():
        print(f"no --data-dir or --bc-data: generating demo pairs in {out}")
        config = DemoConfig(song=SongConfig(min_seconds=30, max_seconds=45))
        generate(out, n_tracks=6, seed=0, style="radio", config=config)
    return out


def _build_bc_data(args: argparse.Namespace, env_cfg: dict, local: Path) -> Path:
    """Features → expert replay once in the driver (the trials get its arrays through Ray)."""
    from editorbot.training import bc_data

    out = local / "bc_data"
    bc_data.bc_data_from_labels(
        args.data_dir / "truth", args.data_dir, out, env_config=dict(env_cfg)
    )
    return out


def _print_table(rows: list[dict], metric: str, space: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"trials by {metric}")
    for col in ("trial", "status", "iter", metric, *space):
        table.add_column(col)
    for r in rows:
        value = r["metric"]
        shown = "—" if not isinstance(value, int | float) or math.isnan(value) else f"{value:.4g}"
        params = [_param(r["config"], key) for key in space]
        table.add_row(str(r["trial"]), r["status"], str(r["iterations"]), shown, *params)
    Console(width=160).print(table)


def _param(config: dict, key: str) -> str:
    section, _, name = key.partition(".")
    value = config.get(section, {}).get(name)
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
