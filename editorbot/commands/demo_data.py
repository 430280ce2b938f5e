"""``editorbot demo-data``: generate (raw, edit) pairs with their true decision lists.

How to run::

    editorbot demo-data --out d --tracks 3 --seed 0
    editorbot demo-data --out d --tracks 6 --seed 1 --style dj --min-seconds 60 --max-seconds 90
    python -m editorbot.commands.demo_data --out d --tracks 1

What to expect: ``d/input/X_raw.wav``, ``d/desired_output/X_edit.wav`` and ``d/truth/X.json``
per track (X = ``demo_s{seed}_{index}``), about 1-4 s per 3-minute track on one core. The same
seed always gives the same files; styles rotate over tracks unless ``--style`` is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from editorbot.cli import run_module

NAME = "demo-data"
HELP = "generate procedural songs, edit them in a known style, write pairs + true decisions"
STYLE_NAMES = (
    "radio",
    "dj",
    "remix",
)  # editorbot.datasets.styles.STYLES; not imported: --help stays light


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output folder (the seed layout)")
    parser.add_argument("--tracks", type=int, default=3, help="number of pairs (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--style", choices=STYLE_NAMES, default=None, help="one editor style (default: rotate)"
    )
    parser.add_argument(
        "--min-seconds", type=float, default=60.0, help="shortest track in s (default 60)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=240.0, help="longest track in s (default 240)"
    )
    parser.add_argument(
        "--bpm", type=float, default=None, help="fixed tempo in beats/min (default: 80-160)"
    )


def run(args: argparse.Namespace) -> int:
    from rich.progress import track

    from editorbot.datasets.demo import DemoConfig, check_out_dir, make_pair, write_pair
    from editorbot.datasets.song import SongConfig
    from editorbot.errors import ParameterError

    if args.tracks < 1:
        raise ParameterError(f"--tracks must be at least 1, got {args.tracks}")
    song = SongConfig(min_seconds=args.min_seconds, max_seconds=args.max_seconds, bpm=args.bpm)
    config = DemoConfig(song=song)
    out_dir = check_out_dir(args.out)
    for i in track(range(args.tracks), description="demo tracks", disable=not sys.stderr.isatty()):
        paths = write_pair(make_pair(args.seed, i, style=args.style, config=config), out_dir)
        print(f"{paths['raw']}  {paths['edit']}  {paths['truth']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
