"""``editorbot evaluate-labels``: score inferred decision lists against the true ones.

How to run::

    editorbot evaluate-labels --pred l --truth d/truth
    editorbot evaluate-labels --pred l --truth d/truth --json
    python -m editorbot.commands.evaluate_labels --pred l --truth d/truth --png confusion.png

What to expect: per-beat type accuracy, structural accuracy, effect macro F1, size and amount
accuracy (where the type is right), per-type precision/recall/F1 and a confusion matrix, as text
(or one JSON object with ``--json``); the confusion matrix is also written as a PNG
(``PRED/confusion.png`` unless ``--png`` says where). Beats are compared by time.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from editorbot.cli import run_module

logger = logging.getLogger(__name__)

NAME = "evaluate-labels"
HELP = "Score inferred decision lists (labels) against true ones, per beat and per type."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, type=Path, help="folder of inferred X.json")
    parser.add_argument("--truth", required=True, type=Path, help="folder of true X.json")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--png", type=Path, default=None, help="confusion-matrix PNG (default PRED/confusion.png)"
    )


def run(args: argparse.Namespace) -> int:
    from editorbot.editing.decisions import DecisionList
    from editorbot.errors import DatasetError
    from editorbot.evaluation.label_metrics import (
        LabelScores,
        beat_labels,
        format_report,
        plot_confusion,
    )

    truth_files = sorted(args.truth.glob("*.json")) if args.truth.is_dir() else []
    if not truth_files:
        raise DatasetError(f"{args.truth}: no true decision lists (*.json); check --truth")
    scores, missing = LabelScores(), []
    for path in truth_files:
        pred_path = args.pred / path.name
        if not pred_path.exists():
            missing.append(path.stem)
            continue
        truth, pred = DecisionList.load(path), DecisionList.load(pred_path)
        scores.add(beat_labels(truth, name=str(path)), beat_labels(pred, name=str(pred_path)))
    if len(missing) == len(truth_files):
        raise DatasetError(
            f"{args.pred}: none of the {len(truth_files)} tracks in {args.truth} has a "
            "prediction; run `editorbot labels` first"
        )
    summary = scores.summary()
    summary["n_tracks"] = len(truth_files) - len(missing)
    summary["missing"] = missing
    plot_confusion(summary, args.png or args.pred / "confusion.png")
    print(json.dumps(summary) if args.json else format_report(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
