"""``editorbot edit``: edit a track with a trained checkpoint (no Ray cluster needed).

How to run: ``editorbot edit input.wav --checkpoint models/rl_model/best --output edited.wav``.

What to expect: ``edited.wav`` and ``edited.decisions.json`` beside it. The checkpoint's
``editorbot_checkpoint.json`` says which learner made it: ``rl`` (the PPO agent, deterministic
unless ``--sample``) or ``supervised`` (the mel-reconstruction baseline).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from editorbot.cli import run_module
from editorbot.errors import CheckpointError, ParameterError

NAME = "edit"
HELP = "edit a track with a trained checkpoint; writes the audio and its decision list"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="the raw track")
    parser.add_argument("--checkpoint", type=Path, required=True, help="e.g. SAVE_DIR/best")
    parser.add_argument("--output", type=Path, required=True, help="edited audio (.wav/.flac)")
    parser.add_argument("--sample", action="store_true", help="sample actions (rl only)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --sample")
    parser.add_argument("--target-duration", type=float, help="[s] wanted output duration (rl)")
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
    from editorbot.inference import read_checkpoint_meta

    _check_input(args)
    kind = read_checkpoint_meta(args.checkpoint).get("kind")
    if args.mel_output is not None and kind != "supervised":
        raise ParameterError(
            f"{args.checkpoint}: --mel-output needs a supervised checkpoint (this one is {kind!r})"
        )
    if kind == "rl":
        from editorbot.inference import edit_track

        paths = edit_track(
            args.input,
            checkpoint=args.checkpoint,
            output=args.output,
            sample=args.sample,
            seed=args.seed,
            target_duration_sec=args.target_duration,
        )
    elif kind == "supervised":
        paths = _edit_supervised(args)
    else:
        raise CheckpointError(f"{args.checkpoint}: unknown checkpoint kind {kind!r}")
    print(f"{paths['audio']} (decisions: {paths['decisions']})")
    return 0


def _check_input(args: argparse.Namespace) -> None:
    """Size and argument checks before anything is decoded or loaded.

    Raises:
        AudioLoadError: the input is too long or too large (from its header).
        ParameterError: --max-input-sec or --target-duration not finite and positive, or the
            target more than the renderer's default bound (4x the input).
    """
    import math

    from editorbot.audio.io import MAX_INPUT_SEC, check_input_size

    max_sec = MAX_INPUT_SEC if args.max_input_sec is None else args.max_input_sec
    if not (math.isfinite(max_sec) and max_sec > 0):
        raise ParameterError(f"--max-input-sec {max_sec}: must be a positive number of seconds")
    duration = check_input_size(args.input, max_sec=max_sec)
    target = args.target_duration
    if target is None:
        return
    if not (math.isfinite(target) and target > 0):
        raise ParameterError(f"--target-duration {target}: must be a positive number of seconds")
    if duration > 0 and target > 4 * duration:
        raise ParameterError(
            f"--target-duration {target:g} s: more than 4x the input's {duration:.1f} s"
        )


def _edit_supervised(args: argparse.Namespace) -> dict[str, Path]:
    from editorbot.audio.io import load_audio, write_audio
    from editorbot.editing.render import render_decision_list
    from editorbot.training.supervised_infer import predict_decisions

    dl = predict_decisions(args.checkpoint, args.input)
    result = render_decision_list(load_audio(args.input), dl)
    write_audio(args.output, result.y, sr=result.sr, protect=(args.input,))
    if args.mel_output is not None:
        from editorbot.training.supervised_infer import resynthesise

        print(f"decoder resynthesis: {resynthesise(args.checkpoint, args.input, args.mel_output)}")
    return {"audio": args.output, "decisions": dl.save(args.output.with_suffix(".decisions.json"))}


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
