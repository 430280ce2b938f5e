"""``editorbot demo``: the whole of editorbot, end to end, on generated demo data.

How to run::

    editorbot demo --out demo_output            # about 15 minutes on 2 CPU cores
    editorbot demo --quick --out demo_output    # about 3 minutes (the smoke test)

What to expect: one line per stage (generate pairs, infer labels, features and BC data, BC + PPO,
supervised baseline, edit and evaluate) with its time, then the table of every system on the
held-out tracks and where things are: ``OUT/report/report.md`` (with PNGs), the edited audio
``OUT/report/edits/X_rl.wav`` and ``X_supervised.wav``, ``OUT/metrics.json``, the models under
``OUT/models/``. The steps are :mod:`editorbot.demo_pipeline`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from editorbot.cli import run_module

logger = logging.getLogger(__name__)

NAME = "demo"
HELP = "run editorbot end to end on generated demo data: train both learners, evaluate, report"

_T = TypeVar("_T")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("demo_output"), help="folder for everything the demo makes"
    )
    parser.add_argument("--quick", action="store_true", help="tiny run (about 3 minutes)")
    parser.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs for Ray (default: all on this machine)"
    )
    parser.add_argument(
        "--style",
        choices=("radio", "dj", "remix"),
        default="radio",
        help="the demo editor's style (one editor per training set)",
    )


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from editorbot import demo_pipeline as dp
    from editorbot.errors import ParameterError
    from editorbot.training.local_ray import local_ray

    if args.out.exists() and not args.out.is_dir():
        raise ParameterError(f"{args.out}: is a file, not a folder; choose another --out")
    _clean(args.out)  # before Ray starts, so a bad --out is one line
    torch.set_num_threads(1)
    s = dp.DemoSettings.quick() if args.quick else dp.DemoSettings()
    s = dataclasses.replace(s, style=args.style)
    out: Path = args.out
    with local_ray(args.num_cpus):
        result = _stages(dp, s, out)
    _print_result(result, out)
    return 0


def _stages(dp: Any, s: Any, out: Path) -> dict[str, Any]:
    """Every stage in order, each timed and announced."""
    dirs = _stage("generate demo pairs", lambda: dp.make_data(out, s))
    test_labels = _stage(
        "infer labels (held-out pairs)",
        lambda: dp.infer_labels(dirs["test"], out / "labels" / "test"),
    )
    train_labels = dirs["train"] / "truth"
    if s.label_train:
        train_labels = _stage(
            "infer labels (training pairs)",
            lambda: dp.infer_labels(dirs["train"], out / "labels" / "train", truth_grid=False),
        )
    window = dp.rl_run_config(s).env.get("window", 64)
    bc_dir = _stage(
        "features + expert episodes",
        lambda: dp.build_features(dirs["train"], train_labels, out / "bc_data", window=window),
    )
    rl = _stage(
        f"RL: BC {s.bc_epochs} epochs + PPO {s.ppo_iters} iterations",
        lambda: dp.train_rl(bc_dir, out / "models" / "rl", s),
    )
    sup = _stage(
        f"supervised baseline ({s.sup_epochs} epochs)",
        lambda: dp.train_supervised(dirs["train"], train_labels, out / "models" / "supervised", s),
    )
    result: dict[str, Any] = _stage(
        "edit held-out tracks + evaluate",
        lambda: dp.evaluate(dirs["test"], test_labels, [rl, sup], out / "report"),
    )
    import json

    from editorbot.atomic import write_text_atomic

    write_text_atomic(out / "metrics.json", json.dumps(result, indent=1, default=float) + "\n")
    return result


MARKER = ".editorbot_demo"
"""File that marks a folder as the demo's own, so a rerun may clear what it made there."""
_MADE = ("data", "labels", "bc_data", "models", "report")


def _clean(out: Path) -> None:
    """Remove a previous demo run's folders (a rerun starts clean); never touch another folder.

    Raises:
        ParameterError: ``out`` holds files but is not a demo folder.
    """
    from editorbot.errors import ParameterError

    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ParameterError(
            f"{out}: not empty and not made by `editorbot demo`; choose a new or empty --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by editorbot demo; its subfolders are replaced on rerun\n")
    for sub in _MADE:
        shutil.rmtree(out / sub, ignore_errors=True)


def _stage(title: str, fn: Callable[[], _T]) -> _T:
    from rich.console import Console

    console = Console(stderr=True)
    start = time.perf_counter()
    with console.status(f"[bold]{title}[/] …"):
        value = fn()
    console.print(f"[green]✓[/] {title}  ({time.perf_counter() - start:.0f} s)", highlight=False)
    return value


def _print_result(result: dict[str, Any], out: Path) -> None:
    from editorbot.commands.evaluate import print_table

    print_table(result)
    report = out / "report"
    edits = sorted((report / "edits").glob("*.wav"))
    print(f"edited audio: {', '.join(str(p) for p in edits)}")
    print(f"report: {report / 'report.md'}  metrics: {out / 'metrics.json'}")


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
