"""Fit the label confidence map (``CalibrationConfig``) on a label-suite run of the cal split.

Reads each pair's prediction (its ``meta["evidence"]``, one row per decision) and truth from
the ``--work`` folder of ``benchmarks/label_suite.py``, takes every true beat as one sample (the
evidence of the decision holding its midpoint, right or not, as the suite's reliability table
does), fits the logistic map on all pairs, and reports the reliability of the map fitted on all
pairs and, the honest estimate, of maps fitted with each pair left out and applied to it.

The calibration split's pairs (new excerpts of the dev tracks, fresh edit seeds) were never
looked at while the labeller's costs were set, so their outcomes are what an unseen pair's are;
the dev pairs' are optimistic (``--split dev`` still fits there, for comparison).

How to run (after a cal run of the suite into the same ``--work``)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/label_suite.py --split cal --sources real \
        --tracks 14 --work /tmp/label_suite
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calibrate_labels.py --work /tmp/label_suite

What to expect: the weights and bias (to paste into ``CalibrationConfig``), then two
reliability tables (fitted, leave-one-pair-out), in seconds. Never run it on the report split.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np


def samples(folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(evidence [shape=(N, F)], right [shape=(N,)]) of one pair's true beats, or None."""
    import label_suite

    from editorbot.editing.actions import ActionType
    from editorbot.editing.decisions import DecisionList
    from editorbot.evaluation.label_metrics import BeatLabels, beat_labels

    pred_p = folder / "pred.json"
    if not pred_p.exists():
        return None
    dl = DecisionList.load(pred_p)
    rows = np.asarray(dl.meta.get("evidence", {}).get("rows", []), dtype=float)
    if len(rows) != len(dl.decisions):
        return None
    which = label_suite._decision_index(dl)
    t = json.loads((folder / "truth.json").read_text())
    types = np.array([int(ActionType[x]) for x in t["types"]])
    labels = np.stack([types, np.zeros_like(types), np.full_like(types, 2)], axis=1)
    truth = BeatLabels(np.asarray(t["beat_times"]), labels, np.zeros((0, 4), dtype=int))
    idx, right = label_suite._outcomes(truth, beat_labels(dl), True)
    k = which[np.clip(idx, 0, len(which) - 1)]
    keep = k >= 0
    return rows[k[keep]], right[keep].astype(float)


def reliability(p: np.ndarray, y: np.ndarray) -> list[tuple[str, int, float | None]]:
    """(bin, beats, share right) per bin of the suite's ``RELIABILITY_BINS``."""
    import label_suite

    edges = label_suite.RELIABILITY_BINS
    k = np.digitize(p, edges) - 1
    out = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        n = int((k == i).sum())
        out.append((f"{lo:.1f}-{min(hi, 1.0):.1f}", n, float(y[k == i].mean()) if n else None))
    return out


def main(argv: list[str] | None = None) -> int:
    from editorbot.editing.labels.calibration import FEATURES, calibrated, fit, pair_offset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/label_suite"))
    p.add_argument("--split", choices=("cal", "dev"), default="cal",
                   help="the suite's split to fit on (never report)")  # fmt: skip
    args = p.parse_args(argv)
    dev = args.work / f"real_{args.split}_exported"
    if not dev.is_dir():
        print(f"{dev}: not found; run `benchmarks/label_suite.py --split {args.split} --sources "
              f"real --work {args.work}` first", file=sys.stderr)  # fmt: skip
        return 1
    pairs = {}
    for folder in sorted(dev.iterdir()):
        s = samples(folder)
        if s is not None:
            pairs[folder.name] = s
    if len(pairs) < 2:
        print(f"{dev}: {len(pairs)} pairs with evidence rows, 2 needed (one left out, one "
              "fitted); rerun that split with this labeller", file=sys.stderr)  # fmt: skip
        return 1
    X = np.concatenate([s[0] for s in pairs.values()])
    y = np.concatenate([s[1] for s in pairs.values()])
    w, b = fit(X, y)
    print(f"{len(pairs)} pairs, {len(y)} beats, {y.mean():.3f} right")
    print(
        "weights:", dict(zip(FEATURES, np.round(w, 3).tolist(), strict=True)), "bias:", round(b, 3)
    )
    cv_z, offsets = [], []
    for name in pairs:
        rest = [s for n, s in pairs.items() if n != name]
        wk, bk = fit(np.concatenate([s[0] for s in rest]), np.concatenate([s[1] for s in rest]))
        cv_z.append((pairs[name][0], wk, bk))
        offsets.append(pair_offset(*pairs[name], wk, bk))
    spread = float(np.std(offsets, ddof=1))
    print(f"pair_spread (sd of the left-out pairs' offsets): {spread:.3f}")
    tables = {
        "raw quality": X[:, 0],
        "fitted": calibrated(X, w, b),
        "leave-one-pair-out": np.concatenate([calibrated(x, wk, bk) for x, wk, bk in cv_z]),
        "fitted, over the pair spread": calibrated(X, w, b, spread),
        "leave-one-pair-out, over the pair spread": np.concatenate(
            [calibrated(x, wk, bk, spread) for x, wk, bk in cv_z]
        ),
    }
    for title, prob in tables.items():
        print(f"\n{title}\n| confidence | beats | right |\n|---|---|---|")
        for name, n, acc in reliability(prob, y):
            print(f"| {name} | {n} | {'—' if acc is None else f'{acc:.3f}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
