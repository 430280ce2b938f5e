"""The seed's inference entry point: ``python -m editorbot.infer`` (same as ``editorbot edit``).

How to run::

    python -m editorbot.infer input.wav --checkpoint models/rl_model/best --output edited.wav

What to expect: ``edited.wav`` and ``edited.decisions.json`` beside it (see
:mod:`editorbot.commands.edit`).
"""

from __future__ import annotations

import argparse
import sys

from editorbot.cli import _add_common, before_exit, run_command
from editorbot.commands import edit as _edit

HELP = _edit.HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _edit.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return _edit.run(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m editorbot.infer", description=HELP)
    _add_common(parser)
    add_arguments(parser)
    rc = run_command(sys.modules[__name__], parser.parse_args(argv))
    if argv is None:  # the command line's run: the process ends next
        before_exit()
    return rc


if __name__ == "__main__":
    sys.exit(main())
