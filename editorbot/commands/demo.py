"""``editorbot demo``: the main job on embedded demo data (for now: analyse one generated track).

How to run::

    editorbot demo --out demo_output/

What to expect: ``demo_output/demo_raw.wav`` (20 s of drums and bass at 124 BPM whose first
downbeat is the track's 4th beat), ``demo_output/demo_raw.parquet`` (its beat features), and on
stdout the beat grid (tempo, number of beats, downbeat phase, first beat times) and the mean and
standard deviation of each feature group. Later issues grow this into the full demo.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from editorbot.cli import run_module

if TYPE_CHECKING:
    from editorbot.audio.analysis import TrackFeatures

logger = logging.getLogger(__name__)

NAME = "demo"
HELP = "Run editorbot on generated demo data (for now: beat grid and feature summary)."

DEMO_TEMPO_BPM = 124.0
"""[beats/min] tempo of the generated demo track."""
DEMO_DURATION_SEC = 20.0
"""[s] length of the generated demo track."""
DEMO_FIRST_BAR_POSITION = 1
"""[beats] the track starts on beat 2 of a bar, so its downbeat phase is 3."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=Path("demo_output"), help="folder for the demo files"
    )


def run(args: argparse.Namespace) -> int:
    from editorbot.audio.io import AudioConfig, load_audio, write_audio
    from editorbot.datasets.feature_cache import ExtractConfig, analyze_cached, write_table
    from editorbot.datasets.testsignals import drum_pattern

    sr = AudioConfig().analysis_sr
    track = drum_pattern(
        tempo_bpm=DEMO_TEMPO_BPM,
        duration_sec=DEMO_DURATION_SEC,
        sr=sr,
        first_bar_position=DEMO_FIRST_BAR_POSITION,
        bass=True,
    )
    wav = write_audio(args.out / "demo_raw.wav", track.y[None, :], sr=sr)
    audio = load_audio(wav)  # analyse what was written, as a user's file would be
    features, key, _ = analyze_cached(audio, ExtractConfig())
    table = write_table(features, args.out / "demo_raw.parquet", key=key)
    _print_summary(features, truth_bpm=DEMO_TEMPO_BPM)
    print(f"wrote {wav} and {table}")
    return 0


def _print_summary(track: TrackFeatures, *, truth_bpm: float) -> None:
    from rich.console import Console
    from rich.table import Table

    from editorbot.audio.features import FEATURE_GROUPS, group_slice

    grid = track.grid
    first = ", ".join(f"{t:.3f}" for t in grid.beat_times[:8])
    console = Console()
    console.print(
        f"beat grid: {grid.tempo_bpm:.1f} BPM (generated at {truth_bpm:.0f}), "
        f"{grid.n_beats} beats, downbeat phase {grid.downbeat_phase}, "
        f"{len(grid.bar_starts())} bars, {len(grid.phrase_starts())} phrases",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"first beats [s]: {first}", highlight=False, markup=False, soft_wrap=True)
    summary = Table(title=f"beat features ({track.features.shape[1]} columns)")
    for column in ("group", "columns", "mean", "std"):
        summary.add_column(column)
    for group, names in FEATURE_GROUPS.items():
        values = track.features[:, group_slice(group)]
        summary.add_row(group, str(len(names)), f"{values.mean():.3g}", f"{values.std():.3g}")
    console.print(summary)


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
