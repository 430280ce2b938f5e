"""``editorbot augment``: render new pairs with rare actions from raw tracks, truth included.

How to run::

    editorbot augment --data-dir d --out aug --per-track 3 --seed 0
    editorbot augment --data-dir d --out aug --grid-from d/truth   # known beat grids
    python -m editorbot.commands.augment --data-dir d --out aug

What to expect: ``OUT/input/X_augKK_raw.wav``, ``OUT/desired_output/X_augKK_edit.wav`` and
``OUT/truth/X_augKK.json`` per new pair (the seed layout, so ``labels`` and ``evaluate-labels``
read it), with every type the state machine allows about equally likely and KEEP rarer; about a
second per pair per minute of audio. The inputs are never overwritten.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from editorbot.cli import run_module

logger = logging.getLogger(__name__)

NAME = "augment"
HELP = "Render new (raw, edit, truth) pairs whose decision lists over-represent rare types."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", required=True, type=Path, help="seed layout folder")
    parser.add_argument("--out", required=True, type=Path, help="folder for the new pairs")
    parser.add_argument("--per-track", type=int, default=2, help="new pairs per raw track")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--grid-from", type=Path, default=None, help="decision lists whose beat_times to use"
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.progress import track

    from editorbot.audio.io import AudioConfig, analysis_signal, load_audio
    from editorbot.datasets.augment import augment_track
    from editorbot.datasets.pairs import discover_pairs
    from editorbot.editing.decisions import DecisionList
    from editorbot.errors import ParameterError

    if args.per_track < 1:
        raise ParameterError(f"--per-track must be at least 1, got {args.per_track}")
    if args.out.resolve() == args.data_dir.resolve():
        raise ParameterError(f"{args.out}: is the data folder; choose another --out")
    rng = np.random.default_rng(args.seed)
    n = 0
    for pair in track(discover_pairs(args.data_dir), description="augmenting"):
        raw = load_audio(pair.raw)
        if args.grid_from is not None:
            grid = DecisionList.load(args.grid_from / f"{pair.name}.json")
            beat_times, phase = np.asarray(grid.beat_times), grid.downbeat_phase
        else:
            from editorbot.audio.beats import track_beats

            bg = track_beats(analysis_signal(raw), sr=AudioConfig().analysis_sr, name=pair.name)
            beat_times, phase = bg.beat_times, bg.downbeat_phase
        names = augment_track(
            raw, name=pair.name, beat_times=beat_times, downbeat_phase=phase,
            out_dir=args.out, n_pairs=args.per_track, rng=rng,
        )  # fmt: skip
        n += len(names)
    print(f"{args.out}: {n} new pairs with truth")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
