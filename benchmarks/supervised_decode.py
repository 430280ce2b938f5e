"""Quality benchmark: the supervised label head's two decodes on one checkpoint, held-out songs.

Issue 16's goal: the supervised baseline reaches >= 0.80 per-beat type accuracy on the demo's
held-out songs. One run trains the demo's supervised model (``demo_pipeline`` with the
``DemoSettings`` defaults: 24 training + 8 held-out radio songs, training labels inferred on the
tracked grid, held-out references inferred on the generator's grid, as ``make demo``), then
decodes each held-out song twice from the same per-beat log-probabilities:

* ``greedy`` (the baseline, the decoder before): along the cursor, the argmax type at the cursor
  beat, then the size and amount at that beat;
* ``per_beat`` (``inference.supervised.decode_decisions``): the most likely decision list, every
  beat a decision consumes scoring that decision's labels.

``--seed S`` trains on demo seed S and holds out S + 1. Seed 0 is the demo's own data; any other
seed is fresh data nothing was tuned on. Data, labels and the checkpoint are cached in
``--workdir`` (a re-run only decodes).

How to run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/supervised_decode.py --seed 0 \\
        [--workdir /tmp/supervised_decode] [--json]

What to expect: about 15 minutes on 2 busy cores (labels and training); one markdown row per
decode (type accuracy, structural accuracy, effect macro F1, size accuracy).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np


def greedy(lp: list[np.ndarray], *, n_beats: int, downbeat_phase: int) -> list[Any]:
    """The baseline: masked argmax of type, then size and amount, at each cursor beat only."""
    from editorbot.editing.actions import (
        ActionAmount,
        ActionSize,
        ActionType,
        action_masks,
        initial_state,
        step,
    )
    from editorbot.editing.decisions import Decision

    floor = -1e9
    type_lp, size_lp, amount_lp = lp
    state = initial_state(n_beats, downbeat_phase=downbeat_phase)
    out = []
    while not state.done:
        c = state.cursor
        type_mask, size_mask, amount_mask = action_masks(state)
        t = int(np.argmax(np.where(type_mask, type_lp[c], floor)))
        s = int(np.argmax(np.where(size_mask[t], size_lp[c], floor)))
        a = int(np.argmax(np.where(amount_mask[t], amount_lp[c], floor)))
        out.append(Decision(c, ActionType(t), ActionSize(s), ActionAmount(a), 1.0))
        state, _ = step(state, t, s, a)
    return out


def prepare(work: Path, seed: int) -> tuple[Path, Path, Path]:
    """(held-out data, its reference labels, supervised ``best/``), made once in ``work``."""
    from editorbot import demo_pipeline as dp

    s = dp.DemoSettings(seed=seed)
    dirs = {"train": work / "data" / "train", "test": work / "data" / "test"}
    if not (dirs["test"] / "truth").exists():
        dirs = dp.make_data(work, s)
    for split, truth_grid in (("test", True), ("train", False)):
        if not (work / "labels" / split).exists():
            dp.infer_labels(dirs[split], work / "labels" / split, truth_grid=truth_grid)
    best = work / "models" / "supervised" / "best"
    if not best.exists():
        dp.train_supervised(dirs["train"], work / "labels" / "train", best.parent, s)
    return dirs["test"], work / "labels" / "test", best


def score(test: Path, refs: Path, best: Path) -> dict[str, dict[str, float]]:
    """Summary scores of both decodes against the held-out references."""
    from editorbot.datasets.pairs import discover_pairs
    from editorbot.editing.decisions import DecisionList
    from editorbot.evaluation import metrics
    from editorbot.evaluation.label_metrics import LabelScores
    from editorbot.inference.supervised import decode_decisions, predict_beat_log_probs

    scores = {"greedy": LabelScores(), "per_beat": LabelScores()}
    for pair in discover_pairs(test):
        lp, beat_times, phase, sr, _ = predict_beat_log_probs(best, pair.raw)
        ref = DecisionList.load(refs / f"{pair.name}.json")
        for name, decode in (("greedy", greedy), ("per_beat", decode_decisions)):
            ds = decode(lp, n_beats=len(beat_times), downbeat_phase=phase)
            dl = DecisionList(sr, beat_times, tuple(ds), downbeat_phase=phase)
            metrics.decision_scores(ref, dl, scores[name])
    keys = ("type_accuracy", "structural_accuracy", "effect_macro_f1", "size_accuracy")
    return {n: {k: float(sc.summary()[k]) for k in keys} for n, sc in scores.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0, help="training data seed (held out: seed + 1)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/supervised_decode"))
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = p.parse_args(argv)
    work = args.workdir / f"seed{args.seed}"
    result = score(*prepare(work, args.seed))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print("| decode | type acc | structural | effect macro F1 | size acc |")
    print("|---|---|---|---|---|")
    for name, row in result.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
