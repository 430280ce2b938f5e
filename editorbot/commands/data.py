"""``editorbot data check DIR``: find the (raw, edit) pairs in a training folder and read them all.

How to run::

    editorbot data check training_data/

What to expect: a table of pairs (durations, sample rates, channels, edit/raw duration ratio),
then one line per unmatched, ambiguous or unreadable file. Exit code 0 when at least one valid
pair exists, 1 otherwise (or when the folder layout is wrong).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from editorbot.cli import run_module
from editorbot.errors import DatasetError

if TYPE_CHECKING:
    from editorbot.datasets.pairs import DataReport, FileInfo

logger = logging.getLogger(__name__)

NAME = "data"
HELP = (
    "inspect training data (`data check DIR`: validate input/X_raw ↔ desired_output/X_edit pairs)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="discover and validate pairs under DIR")
    check.add_argument(
        "dir", type=Path, metavar="DIR", help="folder with input/ and desired_output/"
    )


def run(args: argparse.Namespace) -> int:
    from editorbot.datasets.pairs import check_pairs

    report = check_pairs(args.dir)
    _print_report(report)
    if not report.valid_pairs:
        raise DatasetError(
            f"{args.dir}: no valid pair (of {len(report.scan.pairs)} matched); fix the files above"
        )
    return 0


def _describe(info: FileInfo) -> str:
    if info.error is not None:
        return "unreadable"
    return f"{info.duration_sec:.1f} s, {info.sr} Hz, {info.n_channels} ch"


def _print_report(report: DataReport) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"pairs in {report.root}")
    for column in ("name", "raw", "edit", "edit/raw", "status"):
        table.add_column(column)
    for c in report.checks:
        status = "unreadable" if not c.ok else "unrelated?" if c.unrelated else "ok"
        ratio = f"{c.duration_ratio:.2f}" if c.ok else "-"
        table.add_row(c.pair.name, _describe(c.raw), _describe(c.edit), ratio, status)
    Console().print(table)
    err = Console(stderr=True, highlight=False)
    for c in report.checks:
        for info in (c.raw, c.edit):
            if info.error is not None:
                err.print(f"unreadable: {info.error}", markup=False, soft_wrap=True)
    for c in report.checks:
        if c.unrelated:
            err.print(f"unusable: {c.unrelated}", markup=False, soft_wrap=True)
    for line in report.scan.problems:
        err.print(f"unmatched: {line}", markup=False, soft_wrap=True)
    for path in report.scan.ignored:
        err.print(f"ignored: {path} (not audio named *_raw / *_edit)", markup=False, soft_wrap=True)
    n_ok = len(report.valid_pairs)
    print(f"{n_ok} valid pair(s) of {len(report.scan.pairs)} matched", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
