"""``editorbot evaluate``: score trained editors against the human edits of held-out pairs.

How to run::

    editorbot evaluate --data-dir held_out --checkpoint models/rl/best --out report
    editorbot evaluate --data-dir held_out --checkpoint models/rl/best \\
        --checkpoint models/supervised/best --out report --json

What to expect: ``REPORT/metrics.json``, ``REPORT/report.md`` with its PNGs (waveforms and
spectrograms, decision timeline, confusion matrices, RL training curves) and the learners' edits
under ``REPORT/edits/``; a table of every system (learners and baselines) on stdout, or the
whole ``metrics.json`` with ``--json``. Reference decisions: ``--labels`` if given, else
``DATA_DIR/truth/`` when present, else inferred here by the alignment (slow: 10-20 s per minute
of audio). See :mod:`editorbot.evaluation.report`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from editorbot.cli import run_module
from editorbot.storage import as_location, local_copy

logger = logging.getLogger(__name__)

NAME = "evaluate"
HELP = "compare trained editors and baselines with the human edits of held-out pairs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", required=True, type=Path, help="held-out pairs (seed layout)")
    parser.add_argument(
        "--checkpoint",
        required=True,
        type=as_location,
        action="append",
        help="checkpoint folder (e.g. SAVE_DIR/best) or storage URI; repeat to compare several",
    )
    parser.add_argument("--out", type=Path, default=Path("report"), help="report folder")
    parser.add_argument("--labels", type=Path, help="reference decision lists (editorbot labels)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    parser.add_argument("--json", action="store_true", help="print metrics.json to stdout")


def run(args: argparse.Namespace) -> int:
    from editorbot.evaluation.report import evaluate
    from editorbot.inference.rl import CHECKPOINT_JSON

    checkpoints = [local_copy(c, require=CHECKPOINT_JSON) for c in args.checkpoint]
    result = evaluate(
        args.data_dir,
        checkpoints,
        out_dir=args.out,
        labels_dir=args.labels,
        seed=args.seed,
        progress=not args.json and sys.stderr.isatty(),
    )
    if args.json:
        print(json.dumps(result, default=float))
    else:
        print_table(result)
        print(f"report: {args.out / 'report.md'}  metrics: {args.out / 'metrics.json'}")
    return 0


def print_table(result: dict) -> None:
    """The headline columns of every system as a rich table."""
    from rich.console import Console
    from rich.table import Table

    from editorbot.evaluation.report import HEADLINE

    columns = {
        "type_accuracy": "type acc",
        "cut_hit_rate@3s": "cut hit ±3s",
        "duration_ratio_error": "dur. err",
        "log_mel_l1": "log-mel L1",
        "mrstft": "MR-STFT",
    }
    assert set(columns) <= set(HEADLINE)
    table = Table(title=f"{len(result['pairs'])} held-out pairs, reference: {result['reference']}")
    table.add_column("system")
    for label in columns.values():
        table.add_column(label, justify="right")
    for name, s in result["systems"].items():
        table.add_row(name, *(f"{s[c]:.3f}" for c in columns))
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
