"""``editorbot train``: train a model; one sub-subcommand per learner.

How to run: ``editorbot train supervised --data-dir training_data --save-dir models/supervised``.
Add a learner by adding a line to ``TRAINERS``: its module defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int`` (heavy imports inside ``run``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from editorbot.cli import run_module

NAME = "train"
HELP = "train a learner: `train supervised` (the baseline) or `train rl` (BC + PPO)"

TRAINERS: dict[str, str] = {
    "supervised": "editorbot.training.supervised_run",
    "rl": "editorbot.training.rl_train",
}
"""Learner name -> module implementing it (order = order in --help)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="learner", metavar="LEARNER", required=True)
    for name, module_name in TRAINERS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        # Accepted after the learner too; SUPPRESS keeps a value given before it.
        p.add_argument("--verbose", "-v", action="store_true", default=argparse.SUPPRESS)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
        module.add_arguments(p)
        p.set_defaults(_trainer=module)


def run(args: argparse.Namespace) -> int:
    return int(args._trainer.run(args) or 0)


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
