"""The seed's RL entry point: ``python -m editorbot.train`` (same run as ``editorbot train rl``).

How to run::

    python -m editorbot.train --save-dir models/rl_model --bc-mixed bc_data --bc-weight 0.3 \\
        --epochs 5000 [--subprocess] [--config tune_configs/ppo_debug.yaml]

``--bc-mixed`` is a folder from ``editorbot bc-data``; ``--epochs`` = PPO training iterations;
``--subprocess`` samples in remote env runners (one) instead of the driver.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from editorbot.cli import _add_common, run_command

HELP = "train the RL editor (PPO + mixed BC) from an offline BC data folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--save-dir", type=Path, required=True, help="run folder")
    parser.add_argument("--bc-mixed", type=Path, required=True, help="`editorbot bc-data` folder")
    parser.add_argument("--bc-weight", type=float, help="weight of the mixed BC loss")
    parser.add_argument("--epochs", type=int, default=100, help="PPO training iterations")
    parser.add_argument("--subprocess", action="store_true", help="one remote env runner")
    parser.add_argument("--config", type=Path, help="YAML run config")
    parser.add_argument("--checkpoint-freq", type=int, default=10, help="iterations per save")
    parser.add_argument("--resume", action="store_true", help="continue from the last save")


def run(args: argparse.Namespace) -> int:
    from editorbot.training import rl_train

    ns = argparse.Namespace(
        config=args.config,
        data_dir=None,
        labels=None,
        bc_data=args.bc_mixed,
        save_dir=args.save_dir,
        stop_iters=args.epochs,
        checkpoint_freq=args.checkpoint_freq,
        num_env_runners=1 if args.subprocess else None,
        bc_weight=args.bc_weight,
        resume=args.resume,
    )
    return rl_train.run(ns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m editorbot.train", description=HELP)
    _add_common(parser)
    add_arguments(parser)
    return run_command(sys.modules[__name__], parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
