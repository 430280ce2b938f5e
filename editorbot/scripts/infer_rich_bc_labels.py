"""The seed's labels + BC data in one go: ``python -m editorbot.scripts.infer_rich_bc_labels``.

How to run::

    python -m editorbot.scripts.infer_rich_bc_labels --data_dir training_data --out bc_data

Labels come from ``DATA/truth/NAME.json`` when present (demo data); otherwise every pair
:func:`editorbot.datasets.pairs.discover_pairs` finds (``input/NAME_raw.*`` with
``desired_output/NAME_edit.*``) is labelled by the alignment
(:func:`editorbot.editing.align_labels.label_files`) into ``OUT/labels/``. Then the expert
replay writes the BC data as ``editorbot bc-data`` does. Tracks in ``reference/`` (no human edit)
are not labelled: they serve auxiliary targets only.

What to expect: ``OUT/labels/`` (when aligned), ``OUT/tables/``, ``OUT/episodes/``,
``OUT/bc_data.json``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from editorbot.cli import run_module
from editorbot.errors import DatasetError

logger = logging.getLogger(__name__)

HELP = "label (raw, edit) pairs (or read truth/) and write offline BC data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data_dir", "--data-dir", type=Path, required=True, help="input/ ...")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--window", type=int, default=64, help="[beats] token window W")


def run(args: argparse.Namespace) -> int:
    from editorbot.training import bc_data

    labels = label_folder(args.data_dir, args.out / "labels")
    raws = [bc_data.load_raw_track(p, args.data_dir) for p in labels]
    tables, normalizer = bc_data.build_tables(raws)
    manifest = bc_data.write_bc_data(
        args.out, tables, normalizer, env_config={"window": args.window}
    )
    print(f"{args.out}: {len(tables)} tracks, {sum(manifest['steps'].values())} expert steps")
    return 0


def label_folder(data_dir: Path, out: Path) -> list[Path]:
    """The decision lists of ``data_dir``: ``truth/*.json`` if any, else aligned into ``out``.

    Raises:
        DatasetError: no labels and no (raw, edit) pairs
            (:func:`editorbot.datasets.pairs.discover_pairs`).
    """
    from editorbot.datasets.pairs import discover_pairs
    from editorbot.editing.align_labels import label_files

    truth = sorted((data_dir / "truth").glob("*.json"))
    if truth:
        return truth
    try:
        pairs = discover_pairs(data_dir)
    except DatasetError as e:
        raise DatasetError(f"{e} (or put decision lists in {data_dir / 'truth'}/)") from e
    labels = []
    for pair in pairs:
        path = out / f"{pair.name}.json"
        logger.info("labelled %s", label_files(pair.raw, pair.edit, path))
        labels.append(path)
    return labels


def main(argv: list[str] | None = None) -> int:
    return run_module(__name__, argv)


if __name__ == "__main__":
    sys.exit(main())
