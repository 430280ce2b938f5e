"""How well inferred decision lists match the true ones, beat by beat.

Each raw beat gets the (type, size, amount) of the decision that consumed it (beats no decision
covers are KEEP, as the renderer plays them); a JUMP_BACK consumes nothing and is scored as an
event at its beat. Labels are compared in canonical form (the rule of
:mod:`editorbot.editing.align_parse`: of decision lists that render the same audio, the fewest
decisions, ties to the lower type): a SKIP that removes exactly one size's beats renders like the
CUT of that size and is scored as that CUT, in the truth and in the prediction. Beats are
matched by time (nearest predicted beat within half a beat), so a predicted grid that differs
from the true one still compares.

Shape:
    beat_times: [shape=(N,)] seconds; per-beat labels: [shape=(N, 3)] int (type, size, amount).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from editorbot.editing.actions import (
    N_TYPES,
    SIZE_BEATS,
    ActionSize,
    ActionType,
    initial_state,
    is_structural,
    keep_until,
    step,
)
from editorbot.editing.decisions import Decision, DecisionList
from editorbot.errors import DatasetError

logger = logging.getLogger(__name__)

EFFECT_TYPES = tuple(t for t in ActionType if not is_structural(t))
"""The types that change the audio of the beats they play."""
_UNMATCHED = -1


@dataclass(frozen=True)
class BeatLabels:
    """Per-beat labels of one decision list."""

    beat_times: np.ndarray
    """[shape=(N,)] [s] beat onsets."""
    labels: np.ndarray
    """[shape=(N, 3)] (type, size, amount) of the decision that consumed each beat."""
    events: np.ndarray
    """[shape=(E, 4)] (beat, type, size, amount) of decisions that consume nothing (JUMP_BACK)."""


def beat_labels(dl: DecisionList, *, name: str = "<decisions>") -> BeatLabels:
    """Run the decisions through the state machine and label every raw beat."""
    if dl.beat_times is None:
        raise DatasetError(f"{name}: no beat_times; labels are compared by time — re-export it")
    N = len(dl.beat_times)
    labels = np.tile(np.array([ActionType.KEEP, 0, 2]), (N, 1))
    events = []
    state = initial_state(N, downbeat_phase=dl.downbeat_phase)
    for d in dl.decisions:
        state, _ = keep_until(state, d.beat)
        before = state.cursor
        state, _ = step(state, d.type, d.size, d.amount)
        if state.cursor == before:
            events.append((d.beat, d.type, d.size, d.amount))
        labels[before : state.cursor] = _canonical(d, state.cursor - before)
    return BeatLabels(
        np.asarray(dl.beat_times, dtype=float), labels, np.array(events, dtype=int).reshape(-1, 4)
    )


def _canonical(d: Decision, consumed: int) -> tuple[int, int, int]:
    """(type, size, amount) of a decision in canonical form: a SKIP of one size's beats is a CUT."""
    if d.type == ActionType.SKIP:
        same = [s for s in ActionSize if SIZE_BEATS[s] == consumed]
        if same:
            return int(ActionType.CUT), int(same[0]), int(d.amount)
    return int(d.type), int(d.size), int(d.amount)


@dataclass
class LabelScores:
    """Counts accumulated over pairs; :meth:`summary` turns them into rates."""

    confusion: np.ndarray = field(default_factory=lambda: np.zeros((N_TYPES + 1, N_TYPES + 1)))
    """[shape=(N_TYPES+1, N_TYPES+1)] truth × prediction counts; the last row/column is 'none'."""
    n_size_right: int = 0
    """[beats] type and size right."""
    n_amount_right: int = 0
    """[beats] type and amount right."""

    def add(self, truth: BeatLabels, pred: BeatLabels) -> None:
        """Score one pair: beats by nearest time, events by nearest time within half a beat."""
        idx = _match(truth.beat_times, pred.beat_times)
        ok = idx != _UNMATCHED
        t_lab, p_lab = truth.labels[ok], pred.labels[idx[ok]]
        np.add.at(self.confusion, (t_lab[:, 0], p_lab[:, 0]), 1)
        np.add.at(self.confusion, (truth.labels[~ok, 0], N_TYPES), 1)
        right = t_lab[:, 0] == p_lab[:, 0]
        self.n_size_right += int((right & (t_lab[:, 1] == p_lab[:, 1])).sum())
        self.n_amount_right += int((right & (t_lab[:, 2] == p_lab[:, 2])).sum())
        self._add_events(truth, pred)

    def _add_events(self, truth: BeatLabels, pred: BeatLabels) -> None:
        t_times = truth.beat_times[truth.events[:, 0]] if len(truth.events) else np.zeros(0)
        p_times = pred.beat_times[pred.events[:, 0]] if len(pred.events) else np.zeros(0)
        used = np.zeros(len(p_times), dtype=bool)
        tol = _half_beat(truth.beat_times)
        for k, t in enumerate(t_times):
            free = np.flatnonzero(~used & (np.abs(p_times - t) <= tol))
            if len(free) == 0:
                self.confusion[truth.events[k, 1], N_TYPES] += 1
                continue
            j = free[np.argmin(np.abs(p_times[free] - t))]
            used[j] = True
            tr, pr = truth.events[k], pred.events[j]
            self.confusion[tr[1], pr[1]] += 1
            self.n_size_right += int(tr[1] == pr[1] and tr[2] == pr[2])
            self.n_amount_right += int(tr[1] == pr[1] and tr[3] == pr[3])
        for j in np.flatnonzero(~used):
            self.confusion[N_TYPES, pred.events[j, 1]] += 1

    def summary(self) -> dict[str, Any]:
        """The numbers issue 4 asks for, as one JSON-ready dict."""
        C = self.confusion
        n_right = float(np.trace(C[:N_TYPES, :N_TYPES]))
        n_truth = float(C[:N_TYPES].sum())
        structural = [int(t) for t in ActionType if is_structural(t)]
        per_type = {t.name: _prf(C, int(t)) for t in ActionType}
        effect_f1 = [per_type[t.name]["f1"] for t in EFFECT_TYPES if _present(C, int(t))]
        return {
            "n_beats": int(n_truth),
            "type_accuracy": n_right / max(n_truth, 1.0),
            "structural_accuracy": float(np.trace(C[np.ix_(structural, structural)]))
            / max(float(C[structural].sum()), 1.0),
            "effect_macro_f1": float(np.mean(effect_f1)) if effect_f1 else float("nan"),
            "size_accuracy": self.n_size_right / max(n_right, 1.0),
            "amount_accuracy": self.n_amount_right / max(n_right, 1.0),
            "per_type": per_type,
            "confusion": C[:N_TYPES, : N_TYPES + 1].astype(int).tolist(),
        }


def _prf(C: np.ndarray, t: int) -> dict[str, float]:
    tp = float(C[t, t])
    support = float(C[t].sum())
    predicted = float(C[:, t].sum())
    p = tp / predicted if predicted else 0.0
    r = tp / support if support else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f1, "support": int(support)}


def _present(C: np.ndarray, t: int) -> bool:
    return bool(C[t].sum() > 0 or C[:, t].sum() > 0)


def _half_beat(beat_times: np.ndarray) -> float:
    """[s] half the median beat period: the furthest two grids' beats may sit apart."""
    return 0.5 * float(np.median(np.diff(beat_times))) if len(beat_times) > 1 else 0.25


def _match(truth_times: np.ndarray, pred_times: np.ndarray) -> np.ndarray:
    """Index of the nearest predicted beat for each true beat (``_UNMATCHED`` if too far)."""
    if len(pred_times) == 0:
        return np.full(len(truth_times), _UNMATCHED)
    j = np.clip(np.searchsorted(pred_times, truth_times), 1, len(pred_times) - 1)
    left, right = pred_times[j - 1], pred_times[j]
    j = np.where(np.abs(truth_times - left) <= np.abs(truth_times - right), j - 1, j)
    if len(pred_times) == 1:
        j = np.zeros_like(j)
    far = np.abs(pred_times[j] - truth_times) > _half_beat(truth_times)
    return np.where(far, _UNMATCHED, j)


def format_report(summary: dict[str, Any]) -> str:
    """The summary as text: headline rates, per-type table, confusion matrix."""
    lines = [
        f"beats compared       {summary['n_beats']}",
        f"type accuracy        {summary['type_accuracy']:.3f}",
        f"structural accuracy  {summary['structural_accuracy']:.3f}",
        f"effect macro F1      {summary['effect_macro_f1']:.3f}",
        f"size accuracy        {summary['size_accuracy']:.3f}  (where the type is right)",
        f"amount accuracy      {summary['amount_accuracy']:.3f}  (where the type is right)",
        "",
        f"{'type':<12} {'prec':>6} {'recall':>6} {'F1':>6} {'support':>8}",
    ]
    for name, m in summary["per_type"].items():
        if m["support"] or m["precision"]:
            lines.append(
                f"{name:<12} {m['precision']:>6.3f} {m['recall']:>6.3f} {m['f1']:>6.3f} "
                f"{m['support']:>8d}"
            )
    names = [t.name[:5] for t in ActionType] + ["none"]
    lines += [
        "",
        "confusion (rows truth, columns prediction)",
        " " * 12 + " ".join(f"{n:>5}" for n in names),
    ]
    for t, row in zip(ActionType, summary["confusion"], strict=True):
        lines.append(f"{t.name:<12}" + " ".join(f"{v:>5d}" for v in row))
    return "\n".join(lines)


def plot_confusion(summary: dict[str, Any], path: Any) -> None:
    """Write the confusion matrix (row-normalised) as a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from editorbot.atomic import atomic_path

    C = np.array(summary["confusion"], dtype=float)
    norm = C / np.maximum(C.sum(axis=1, keepdims=True), 1.0)
    fig, ax = plt.subplots(figsize=(9, 8))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = [t.name for t in ActionType]
    ax.set_xticks(range(len(names) + 1), [*names, "none"], rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted type")
    ax.set_ylabel("true type")
    ax.set_title(f"per-beat type confusion (accuracy {summary['type_accuracy']:.3f})")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def on_grid(pred: BeatLabels, beat_times: np.ndarray) -> BeatLabels:
    """``pred`` read on another grid by time: each interval of ``beat_times`` takes the label of
    the predicted beat that contains its midpoint (so two grids of different tempo or phase
    compare by what plays when, not by beat index); events move to the beat containing them.

    Args:
        pred: labels on the prediction's own grid.
        beat_times: [shape=(N,)] [s] the grid to read them on (the truth's).
    """
    times = np.asarray(beat_times, dtype=float)
    period = np.diff(times, append=times[-1] + _half_beat(times) * 2) if len(times) else times
    mids = times + 0.5 * period
    idx = np.clip(np.searchsorted(pred.beat_times, mids, side="right") - 1, 0, len(pred.labels) - 1)
    events = pred.events.copy()
    if len(events):
        at = pred.beat_times[events[:, 0]]
        events[:, 0] = np.clip(np.searchsorted(times, at, side="right") - 1, 0, len(times) - 1)
    return BeatLabels(times, pred.labels[idx], events)
