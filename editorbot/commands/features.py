"""``editorbot features``: beat grid + 121 beat features of audio files, as Parquet tables.

How to run::

    editorbot features song.wav --out features/
    editorbot features training_data/input/ --out features/ --cache-dir ~/.cache/editorbot/features

What to expect: ``features/<name>.parquet`` per input, columns ``beat_index``, ``beat_time``
and the 121 features, with sample rate, tempo, downbeat phase and the stems flag in the Parquet
metadata. One file runs in-process; several run in parallel as Ray tasks with a progress bar.
A bad file gets one line on stderr and the others go on; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from editorbot.cli import run_module
from editorbot.errors import AudioLoadError, ParameterError

if TYPE_CHECKING:
    from editorbot.datasets.feature_cache import ExtractConfig

logger = logging.getLogger(__name__)

NAME = "features"
HELP = "compute beat grids and the 121 beat features of audio files (Parquet tables)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="+", metavar="AUDIO_OR_DIR", help="audio files, or folders of them"
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for <name>.parquet")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="content-keyed cache of feature tables"
    )
    parser.add_argument(
        "--stems-dir",
        type=Path,
        default=None,
        help="precomputed Demucs stems (DIR/<name>/drums.wav ...); turns the stem columns on",
    )
    parser.add_argument(
        "--demucs-dir",
        type=Path,
        default=None,
        help="HTDemucs weights (folder or .th) to separate stems now; turns the stem columns on",
    )
    parser.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs for the local Ray (default: all)"
    )


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from editorbot.datasets.feature_cache import ExtractConfig, extract_file

    sources = expand_inputs(args.inputs)
    if args.stems_dir is not None and args.demucs_dir is not None:
        raise ParameterError("pass --stems-dir (precomputed stems) or --demucs-dir, not both")
    config = ExtractConfig()
    if args.stems_dir is not None or args.demucs_dir is not None:
        config = replace(config, features=replace(config.features, use_stems=True))
    if len(sources) == 1:
        result = extract_file(
            sources[0],
            args.out,
            config,
            cache_dir=args.cache_dir,
            stems_dir=args.stems_dir,
            demucs_dir=args.demucs_dir,
        )
        print(f"{result.source} -> {result.out}{' (cached)' if result.cached else ''}")
        return 0
    return _run_many(sources, args, config)


def _run_many(sources: list[Path], args: argparse.Namespace, config: ExtractConfig) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from editorbot.training.features_job import extract_many

    console = Console(stderr=True)  # stdout stays clean; errors and progress go to stderr
    n_failed = 0
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task("features", total=len(sources))
        for result in extract_many(
            sources,
            args.out,
            config,
            cache_dir=args.cache_dir,
            stems_dir=args.stems_dir,
            demucs_dir=args.demucs_dir,
            num_cpus=args.num_cpus,
        ):
            progress.advance(bar)
            if result.error is not None:
                n_failed += 1
                console.print(
                    f"editorbot: error: {result.error}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
    print(f"{len(sources) - n_failed} of {len(sources)} files -> {args.out}", file=sys.stderr)
    return 1 if n_failed else 0


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given, folders expanded to their audio files (sorted, not recursive).

    Raises:
        AudioLoadError: a path that does not exist.
        ParameterError: a folder with no audio file in it.
    """
    from editorbot.audio.io import AUDIO_EXTENSIONS

    sources: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(
                p for p in item.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            )
            if not found:
                raise ParameterError(
                    f"{item}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder"
                )
            sources.extend(found)
        elif not item.exists():
            raise AudioLoadError(f"{item}: no such file; check the path")
        else:
            sources.append(item)
    return sources


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
