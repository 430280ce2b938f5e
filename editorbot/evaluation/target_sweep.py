"""How agreement with the human edit holds up when the length is imposed (``edit --target-*``).

For each learner and held-out pair, the edit is decoded with the target set to 0.8, 1.0 and 1.2
times the human edit's length (:data:`FACTORS`), and scored against the human edit's labels
like the free edit is (per-beat type accuracy). The learner's scores are computed once per
track; only the constrained decoding runs per target. Rendering is not needed: the planned
length is the rendered one (the renderer's arithmetic), reported as the relative error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from editorbot.audio.io import load_audio
from editorbot.datasets.pairs import Pair
from editorbot.editing.decisions import DecisionList, decisions_from_actions
from editorbot.editing.duration_decode import most_likely_actions, supervised_log_probs
from editorbot.errors import ParameterError
from editorbot.evaluation import metrics
from editorbot.evaluation.label_metrics import LabelScores
from editorbot.target_duration import (
    Grid,
    TargetSpec,
    fit_actions,
    output_samples,
    policy_log_probs,
)

FACTORS = (0.8, 1.0, 1.2)
"""[ratio] targets as multiples of the human edit's length."""


def sweep(
    models: dict[str, tuple[str, Path]], pairs: list[Pair], refs: dict[str, DecisionList]
) -> dict[str, dict[str, dict[str, float]]]:
    """``{model: {"0.8x": {"type_accuracy", "duration_error", "n_tracks", "n_unreachable"}}}``.

    ``duration_error`` [ratio] is the mean |planned - target| / target; an unreachable target
    (outside the track's range) is counted, not scored.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, (kind, ckpt) in models.items():
        scores = {f: LabelScores() for f in FACTORS}
        errors: dict[float, list[float]] = {f: [] for f in FACTORS}
        unreachable = dict.fromkeys(FACTORS, 0)
        for pair in pairs:
            free, lp, grid, beat_times = _scores(kind, ckpt, pair.raw)
            human_sec = load_audio(pair.edit).duration_sec
            for f in FACTORS:
                spec = TargetSpec(f * human_sec)
                try:
                    actions, _ = fit_actions(
                        free, lp, grid, spec, name=pair.name, per_beat=kind == "supervised"
                    )
                except ParameterError:
                    unreachable[f] += 1
                    continue
                dl = decisions_from_actions(actions, n_beats=grid.n_beats, sample_rate=grid.sr,
                                            beat_times=beat_times,
                                            downbeat_phase=grid.downbeat_phase)  # fmt: skip
                metrics.decision_scores(refs[pair.name], dl, scores[f])
                planned = output_samples(actions, grid) / grid.sr
                errors[f].append(abs(planned - spec.target_sec) / spec.target_sec)
        out[name] = {
            f"{f:g}x": {
                "type_accuracy": float(scores[f].summary()["type_accuracy"]),
                "duration_error": float(np.mean(errors[f])) if errors[f] else float("nan"),
                "n_tracks": float(len(errors[f])),
                "n_unreachable": float(unreachable[f]),
            }
            for f in FACTORS
        }
    return out


def markdown(result: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """The report's section: type accuracy (and length error) per learner and target."""
    if not result:
        return []
    heads = [f"{f:g}x" for f in FACTORS]
    lines = [
        "## Target duration (type accuracy vs the human edit, length imposed)",
        "",
        "Each learner's edit decoded with the target set to a multiple of the human edit's "
        "length (`edit --target-duration`); in brackets the mean relative length error.",
        "",
        "| system | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(heads),
    ]
    for name, row in result.items():
        cells = [f"{row[h]['type_accuracy']:.3f} ({row[h]['duration_error']:.3f})" for h in heads]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _scores(kind: str, ckpt: Path, raw: Path) -> tuple[np.ndarray, Any, Grid, np.ndarray]:
    """(unconstrained actions, per-beat log-probs, grid, beat times [s]) of a learner on a track."""
    if kind == "supervised":
        from editorbot.inference.supervised import predict_beat_log_probs

        lp, beat_times, phase, sr, _ = predict_beat_log_probs(ckpt, raw)
        scores = supervised_log_probs(lp)  # what decode_decisions decodes, as edit does
        free = most_likely_actions(scores, n_beats=len(beat_times), downbeat_phase=phase)
        grid = Grid.of(beat_times, sr=sr, n_samples=load_audio(raw).n_samples, phase=phase)
        return free, scores, grid, beat_times
    from editorbot.inference.rl import policy_on_track

    net, env, audio, g = policy_on_track(ckpt, raw)
    grid = Grid.of(g.beat_times, sr=audio.sr, n_samples=audio.n_samples, phase=g.downbeat_phase)
    greedy, scores = policy_log_probs(net, env, 0)
    return greedy, scores, grid, g.beat_times
