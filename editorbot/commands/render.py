"""``editorbot render``: apply a decision list to a raw track.

How to run::

    editorbot render RAW.wav --decisions D.json --out OUT.wav
    python -m editorbot.commands.render RAW.wav --decisions D.json --out OUT.wav

What to expect: OUT.wav at RAW's rate and channels (32-bit float WAV unless ``--subtype`` says
otherwise), written atomically; a fraction of a second for structural edits of a 3-minute
track. Beats are tracked only if the list has no ``beat_times``. RAW is never overwritten.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from editorbot.cli import run_module

logger = logging.getLogger(__name__)

NAME = "render"
HELP = "render a raw track with an edit decision list (JSON) into an edited audio file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("raw", type=Path, help="the raw track (WAV, FLAC, OGG, MP3 ...)")
    parser.add_argument("--decisions", required=True, type=Path, help="decision list (JSON)")
    parser.add_argument("--out", required=True, type=Path, help="edited audio (.wav/.flac/.ogg)")
    parser.add_argument(
        "--crossfade-ms", type=float, default=10.0, help="[ms] crossfade at jumps (default 10)"
    )
    parser.add_argument(
        "--max-output-sec",
        type=float,
        default=None,
        help="[s] refuse an edit longer than this (default: 4x the raw track's length)",
    )
    parser.add_argument(
        "--subtype",
        default="FLOAT",
        choices=("FLOAT", "PCM_16", "PCM_24"),
        help="WAV sample format (default FLOAT: bit-exact)",
    )


def run(args: argparse.Namespace) -> int:
    from editorbot.audio.io import load_audio, write_audio
    from editorbot.editing.decisions import DecisionList
    from editorbot.editing.render import RenderConfig, render_decision_list
    from editorbot.errors import ParameterError

    if args.out.exists() and args.out.resolve() == args.raw.resolve():
        raise ParameterError(
            f"{args.out}: refusing to overwrite the raw track; choose another --out"
        )
    config = RenderConfig(crossfade_ms=args.crossfade_ms, max_output_sec=args.max_output_sec)
    dl = DecisionList.load(args.decisions)
    audio = load_audio(args.raw, check_duration=False)
    try:
        result = render_decision_list(audio, dl, config=config)
    except ParameterError as e:  # the output bound: name the decision list that asked for it
        raise ParameterError(f"{args.decisions}: {e}") from e
    write_audio(args.out, result.y, sr=result.sr, subtype=args.subtype, protect=(args.raw,))
    print(
        f"{args.out}: {result.y.shape[1] / result.sr:.2f} s from {audio.duration_sec:.2f} s, "
        f"{len(dl.decisions)} decisions, {len(result.segments)} segments"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
