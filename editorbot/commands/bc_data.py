"""``editorbot bc-data``: expert replay of labelled tracks → offline BC data (RLlib format).

How to run: ``editorbot bc-data --labels training_data/truth --data-dir training_data
--out bc_data`` (labels are decision lists ``NAME.json``; audio ``DATA/input/NAME_raw.wav``).

What to expect: a few seconds of feature extraction per 3-minute track, then
``OUT/tables/``, ``OUT/episodes/*.parquet`` and ``OUT/bc_data.json`` (see
:mod:`editorbot.training.bc_data`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from editorbot.cli import run_module
from editorbot.errors import DatasetError

logger = logging.getLogger(__name__)

NAME = "bc-data"
HELP = "replay expert decision lists through the editing env into offline BC data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", required=True, type=Path, help="folder of NAME.json lists")
    parser.add_argument("--data-dir", required=True, type=Path, help="folder with input/")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--window", type=int, default=64, help="[beats] token window W")


def run(args: argparse.Namespace) -> int:
    from rich.progress import track

    from editorbot.training import bc_data

    labels = sorted(args.labels.glob("*.json"))
    if not labels:
        raise DatasetError(f"{args.labels}: no decision lists (*.json); check --labels")
    raws = [
        bc_data.load_raw_track(p, args.data_dir)
        for p in track(labels, description="features", disable=not sys.stderr.isatty())
    ]
    tables, normalizer = bc_data.build_tables(raws)
    manifest = bc_data.write_bc_data(
        args.out, tables, normalizer, env_config={"window": args.window}
    )
    n_steps = sum(manifest["steps"].values())
    print(f"{args.out}: {len(tables)} tracks, {n_steps} expert steps")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
