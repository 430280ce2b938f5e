"""``editorbot labels``: infer the expert decision list of every (raw, edit) pair.

How to run::

    editorbot labels --data-dir d --out l
    editorbot labels --data-dir d --out l --grid-from d/truth   # use known beat grids
    python -m editorbot.commands.labels --data-dir d --out l --num-cpus 2

What to expect: ``OUT/X.json`` per pair (decision-list format, ``beat_times`` of the raw track,
low-confidence stretches listed in ``meta["low_confidence"]``), pairs run in parallel as Ray
tasks with a progress bar, about 10-20 s per minute of audio per core. A bad pair (unrelated
audio, an edit longer than the language can make, unreadable files) is reported on one line and
skipped; the exit code is 1 only if no pair could be labelled.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from editorbot.cli import run_module

logger = logging.getLogger(__name__)

NAME = "labels"
HELP = "Align every (raw, edit) pair and write its inferred decision list (expert labels)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", required=True, type=Path, help="seed layout folder")
    parser.add_argument("--out", required=True, type=Path, help="folder for OUT/X.json")
    parser.add_argument(
        "--grid-from",
        type=Path,
        default=None,
        help="folder of decision lists whose beat_times to use (default: track beats)",
    )
    parser.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs for Ray (default: all on this machine)"
    )
    parser.add_argument(
        "--method",
        choices=("auto", "alignment", "global"),
        default="auto",
        help="labeller: global (one frame path; exported edits), alignment (sample-exact "
        "renderer edits), auto (alignment where the edit's copies are sample-exact)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--force",
        action="store_true",
        help="allow --out to be a data folder's truth/ (replaces its ground-truth lists)",
    )


def run(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from editorbot.datasets.pairs import discover_pairs
    from editorbot.errors import DatasetError
    from editorbot.training.labels_job import label_pairs

    _refuse_truth(args.out, args.data_dir, force=args.force)
    pairs = discover_pairs(args.data_dir)
    jobs = [
        (p.raw, p.edit, args.out / f"{p.name}.json", _grid(args.grid_from, p.name)) for p in pairs
    ]
    with Progress(disable=args.no_progress) as bar:
        task = bar.add_task("aligning pairs", total=len(jobs))
        results = label_pairs(
            jobs, num_cpus=args.num_cpus, on_done=lambda _: bar.advance(task), method=args.method
        )
    return report_results(results, args.out, DatasetError)


def _refuse_truth(out: Path, data_dir: Path, *, force: bool) -> None:
    """Refuse to write inferred lists over a data folder's ground truth (``DATA/truth``).

    Raises:
        ParameterError: ``out`` is ``data_dir/truth``, or a ``truth`` folder beside an
            ``input`` folder (another data folder's), and ``force`` is off.
    """
    from editorbot.errors import ParameterError

    out_abs = out.resolve()
    is_truth = out_abs == (data_dir / "truth").resolve() or (
        out_abs.name == "truth" and (out_abs.parent / "input").is_dir()
    )
    if is_truth and not force:
        raise ParameterError(
            f"--out {out}: that is a data folder's truth/ (its ground-truth decision lists); "
            "write the inferred labels elsewhere, or pass --force to replace them"
        )


def _grid(folder: Path | None, name: str) -> Path | None:
    if folder is None:
        return None
    path = folder / f"{name}.json"
    if not path.exists():
        from editorbot.errors import DatasetError

        raise DatasetError(
            f"{path}: no decision list with a beat grid for {name}; check --grid-from"
        )
    return path


def report_results(results: list[dict[str, Any]], out: Path, error: type[Exception]) -> int:
    """Print what a labels run did (pairs skipped, doubtful pairs, a summary line); 0, or
    ``error`` when no pair could be labelled."""
    bad = [r for r in results if "error" in r]
    good = [r for r in results if "error" not in r]
    for r in sorted(bad, key=lambda r: r["name"]):
        print(f"editorbot: skipped {r['name']}: {r['error']}", file=sys.stderr)
    name_doubtful_pairs(good)
    n_low = sum(r["low_confidence"] for r in good)
    print(
        f"{out}: {len(good)} decision lists, {len(bad)} pairs skipped, "
        f"{n_low} low-confidence decisions flagged (meta.low_confidence)"
    )
    if not good:
        raise error(f"{out}: no pair could be labelled ({len(bad)} skipped); see the lines above")
    return 0


def name_doubtful_pairs(good: list[dict[str, Any]]) -> None:
    """One line per labelled pair whose decisions' mean confidence is under
    ``LabelConfig.low_pair_confidence``: its labels are more guess than reading."""
    from editorbot.editing.align_labels import LabelConfig

    floor = LabelConfig().low_pair_confidence
    for r in sorted(good, key=lambda r: r["name"]):
        if r["mean_confidence"] < floor:
            print(
                f"editorbot: {r['name']}: mean label confidence {r['mean_confidence']:.2f} "
                f"(under {floor:.2f}); listen to the pair, or leave it out of training",
                file=sys.stderr,
            )


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
