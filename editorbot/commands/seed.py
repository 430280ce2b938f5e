"""The seed's entry points, defined in one place (not an ``editorbot`` subcommand).

``python -m editorbot.infer``, ``python -m editorbot.train`` and
``python -m editorbot.supervised_trainer`` are shims of a few lines that call :func:`infer`,
:func:`train` and :func:`supervised_trainer` here:

* ``infer`` is ``editorbot edit`` (:mod:`editorbot.commands.edit`), same flags;
* ``supervised_trainer`` is ``editorbot train supervised``
  (:mod:`editorbot.training.supervised_run`), same flags;
* ``train`` is ``editorbot train rl`` (:mod:`editorbot.training.rl_train`) under the seed's
  flags: ``--bc-mixed`` is ``--bc-data`` (a folder from ``editorbot bc-data``), ``--epochs`` is
  ``--stop-iters`` (PPO training iterations), ``--subprocess`` is ``--num-env-runners 1``
  (sampling in one remote env runner instead of the driver). This module's ``HELP``,
  ``add_arguments`` and ``run`` are that command.

How to run::

    python -m editorbot.infer input.wav --checkpoint models/rl_model/best --output edited.wav
    python -m editorbot.train --save-dir models/rl_model --bc-mixed bc_data --bc-weight 0.3 \\
        --epochs 5000 [--subprocess] [--config tune_configs/ppo_debug.yaml]
    python -m editorbot.supervised_trainer --data-dir training_data --save-dir models/supervised

What to expect: what the ``editorbot`` subcommand each one runs writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from editorbot.cli import run_module

HELP = "train the RL editor (PPO + mixed BC) from an offline BC data folder"
"""``python -m editorbot.train``'s description."""


def infer(argv: list[str] | None = None) -> int:
    """``python -m editorbot.infer``: ``editorbot edit``."""
    return run_module("editorbot.commands.edit", argv, prog="python -m editorbot.infer")


def supervised_trainer(argv: list[str] | None = None) -> int:
    """``python -m editorbot.supervised_trainer``: ``editorbot train supervised``."""
    prog = "python -m editorbot.supervised_trainer"
    return run_module("editorbot.training.supervised_run", argv, prog=prog)


def train(argv: list[str] | None = None) -> int:
    """``python -m editorbot.train``: ``editorbot train rl`` under the seed's flags (``run``)."""
    return run_module(__name__, argv, prog="python -m editorbot.train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The seed's RL training flags."""
    parser.add_argument("--save-dir", type=Path, required=True, help="run folder")
    parser.add_argument("--bc-mixed", type=Path, required=True, help="`editorbot bc-data` folder")
    parser.add_argument("--bc-weight", type=float, help="weight of the mixed BC loss")
    parser.add_argument("--epochs", type=int, default=100, help="PPO training iterations")
    parser.add_argument("--subprocess", action="store_true", help="one remote env runner")
    parser.add_argument("--config", type=Path, help="YAML run config")
    parser.add_argument("--checkpoint-freq", type=int, default=10, help="iterations per save")
    parser.add_argument("--resume", action="store_true", help="continue from the last save")


def run(args: argparse.Namespace) -> int:
    """Translate the seed's flags to ``editorbot train rl``'s and run it."""
    from editorbot.training import rl_train

    return rl_train.run(
        argparse.Namespace(
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
    )
