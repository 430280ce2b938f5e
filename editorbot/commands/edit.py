"""``editorbot edit``: edit a track with a trained checkpoint (no Ray cluster needed).

How to run: ``editorbot edit input.wav --checkpoint models/rl_model/best --output edited.wav``.

What to expect: ``edited.wav`` and ``edited.decisions.json`` beside it. The checkpoint's
``editorbot_checkpoint.json`` says which learner made it: ``rl`` (the PPO agent, deterministic
unless ``--sample``) or ``supervised`` (the mel-reconstruction baseline). With
``--target-duration S`` / ``--target-ratio R`` the decoded edit is the learner's most likely one
within ``--tolerance`` (default one bar) of the target; ``--exact`` stretches it (<= 3 %) to the
sample. A target out of the track's reach is one error line naming the reachable range.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from editorbot.cli import run_module
from editorbot.errors import CheckpointError, ParameterError
from editorbot.storage import as_location, local_copy

NAME = "edit"
HELP = "edit a track with a trained checkpoint; writes the audio and its decision list"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the raw track")
    parser.add_argument(
        "--checkpoint",
        type=as_location,
        required=True,
        help="e.g. SAVE_DIR/best, or a storage URI (s3://BUCKET/run/best)",
    )
    parser.add_argument("--output", type=Path, required=True, help="edited audio (.wav/.flac)")
    parser.add_argument("--sample", action="store_true", help="sample actions (rl only)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --sample")
    target = parser.add_argument_group("target duration (a constraint on the decoded edit)")
    target.add_argument("--target-duration", type=float, help="[s] wanted output duration")
    target.add_argument("--target-ratio", type=float, help="wanted duration / the raw track's")
    target.add_argument("--tolerance", type=float, help="[s] allowed distance (default: one bar)")
    target.add_argument(
        "--exact", action="store_true", help="then time-stretch (<= 3 %%) to the exact length"
    )
    parser.add_argument(
        "--max-input-sec",
        type=float,
        default=None,
        help="[s] refuse a longer input before decoding it (default 1800)",
    )
    parser.add_argument(
        "--mel-output",
        type=Path,
        help="supervised only: also write the decoder's edited mel, resynthesised, for listening",
    )


def run(args: argparse.Namespace) -> int:
    from editorbot.inference.rl import CHECKPOINT_JSON, read_checkpoint_meta

    raw_sec = _check_input(args)
    # A URI is downloaded to a local cache first; the loaders then check it as any folder.
    args.checkpoint = local_copy(args.checkpoint, require=CHECKPOINT_JSON)
    kind = read_checkpoint_meta(args.checkpoint).get("kind")
    target_sec = _target_sec(args, raw_sec=raw_sec)
    if args.mel_output is not None and kind != "supervised":
        raise ParameterError(
            f"{args.checkpoint}: --mel-output needs a supervised checkpoint (this one is {kind!r})"
        )
    if kind == "rl":
        from editorbot.inference.rl import edit_track

        paths = edit_track(
            args.input,
            checkpoint=args.checkpoint,
            output=args.output,
            sample=args.sample,
            seed=args.seed,
            target_duration_sec=target_sec,
            tolerance_sec=args.tolerance,
            exact=args.exact,
        )
    elif kind == "supervised":
        paths = _edit_supervised(args, target_sec)
    else:
        raise CheckpointError(f"{args.checkpoint}: unknown checkpoint kind {kind!r}")
    print(f"{paths['audio']} (decisions: {paths['decisions']})")
    return 0


def _target_sec(args: argparse.Namespace, *, raw_sec: float) -> float | None:
    """[s] the target of --target-duration / --target-ratio (None: the editor's own length).

    Raises:
        ParameterError: not finite and positive, both given, or --exact/--tolerance without
            a target (a target out of the track's reach is refused by the decoder).
    """
    from editorbot.target_duration import target_from_args

    if args.target_ratio is None and args.target_duration is None:
        if args.exact or args.tolerance is not None:
            raise ParameterError("--exact and --tolerance need --target-duration or --target-ratio")
        return None
    return target_from_args(args.target_duration, args.target_ratio, raw_sec=raw_sec)


def _check_input(args: argparse.Namespace) -> float:
    """Size checks before anything is decoded or loaded.

    Returns:
        [s] the input's duration from its header.

    Raises:
        AudioLoadError: the input is too long or too large (from its header).
        ParameterError: --max-input-sec not finite and positive.
    """
    import math

    from editorbot.audio.io import MAX_INPUT_SEC, check_input_size

    max_sec = MAX_INPUT_SEC if args.max_input_sec is None else args.max_input_sec
    if not (math.isfinite(max_sec) and max_sec > 0):
        raise ParameterError(f"--max-input-sec {max_sec}: must be a positive number of seconds")
    return check_input_size(args.input, max_sec=max_sec)


def _edit_supervised(args: argparse.Namespace, target_sec: float | None) -> dict[str, Path]:
    from editorbot.audio.io import open_audio
    from editorbot.inference.rl import write_edit
    from editorbot.target_duration import TargetSpec, fit_supervised

    audio = open_audio(args.input)
    spec = None if target_sec is None else TargetSpec(target_sec, args.tolerance, args.exact)
    dl = fit_supervised(args.checkpoint, args.input, spec, n_samples=audio.n_samples)
    write_edit(audio, dl, args.output, protect=(args.input,))
    if args.mel_output is not None:
        from editorbot.inference.supervised import resynthesise

        print(f"decoder resynthesis: {resynthesise(args.checkpoint, args.input, args.mel_output)}")
    return {"audio": args.output, "decisions": dl.save(args.output.with_suffix(".decisions.json"))}


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
