"""Evaluate trained editors against the human edits of held-out pairs; write metrics and report.

For every pair ``X`` of ``DATA_DIR`` (each one held out from training: pass a folder the models
never saw), the reference decisions are, in this order of preference: ``--labels`` /``X.json``
(inferred by ``editorbot labels``), ``DATA_DIR/truth/X.json`` (the demo generator's true edit),
or labels inferred here by the alignment. Every system — each checkpoint and each baseline of
:mod:`editorbot.evaluation.baselines` — gives a decision list, which the one renderer turns into
audio; :mod:`editorbot.evaluation.metrics` compares both with the human edit. Each learner is
also decoded with its length imposed (0.8x, 1.0x, 1.2x the human edit's,
:mod:`editorbot.evaluation.target_sweep`) and scored there too.

Writes ``OUT/metrics.json``, ``OUT/report.md``, its PNGs, and ``OUT/edits/X_SYSTEM.wav`` (the
learners' edits).

How to run: ``editorbot evaluate --data-dir held_out --checkpoint models/rl/best --out report``.

What to expect: a few seconds per minute of audio per system on one core, plus the models'
inference (beat tracking and features for RL, as in ``editorbot edit``).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from editorbot.atomic import write_text_atomic
from editorbot.audio.io import Audio, load_audio, resample, to_mono, write_audio
from editorbot.datasets.pairs import Pair, discover_pairs
from editorbot.editing.decisions import DecisionList
from editorbot.editing.render import render_decision_list
from editorbot.errors import DatasetError
from editorbot.evaluation import baselines, metrics, target_sweep
from editorbot.evaluation.label_metrics import LabelScores

logger = logging.getLogger(__name__)

HEADLINE = (
    "type_accuracy",
    "size_accuracy",
    "amount_accuracy",
    "effect_macro_f1",
    "cut_hit_rate@0.5s",
    "cut_hit_rate@3s",
    "cut_f@3s",
    "duration_ratio_error",
    "log_mel_l1",
    "mrstft",
    "seam_score_mean",
)
"""Table columns of the report, in order."""


@dataclass
class _System:
    """What one system accumulates over the pairs."""

    scores: LabelScores = field(default_factory=LabelScores)
    per_track: list[dict[str, Any]] = field(default_factory=list)


def evaluate(
    data_dir: str | Path,
    checkpoints: list[Path],
    *,
    out_dir: str | Path,
    labels_dir: str | Path | None = None,
    seed: int = 0,
    config: metrics.MetricsConfig | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score each checkpoint and the baselines on the pairs of ``data_dir`` (module docstring).

    Returns:
        The ``metrics.json`` content: ``systems`` (name -> summary), ``reference``, ``pairs``.

    Raises:
        DatasetError: no pairs, or a pair without usable reference labels.
        CheckpointError: a checkpoint that does not load.
    """
    config = config or metrics.MetricsConfig()
    out_dir = Path(out_dir)
    pairs = discover_pairs(data_dir)
    if not pairs:
        raise DatasetError(f"{data_dir}: no (X_raw, X_edit) pairs; check --data-dir")
    refs, source = _references(pairs, Path(data_dir), labels_dir, out_dir)
    models = _name_models(checkpoints)
    majority = baselines.majority_action(list(refs.values()))
    systems: dict[str, _System] = {name: _System() for name in [*models, *baselines.BASELINES]}
    lists_of_first: dict[str, DecisionList] = {}
    iterator = _progress(pairs, progress)
    for k, pair in enumerate(iterator):
        lists = {
            name: _model_list(kind, ckpt, pair, out_dir) for name, (kind, ckpt) in models.items()
        }
        grid = _tracked_grid(pair)
        lists |= baselines.baseline_lists(refs[pair.name], grid, majority=majority, seed=seed + k)
        audio = _score_pair(pair, refs[pair.name], lists, systems, out_dir, models, config)
        if k == 0:
            lists_of_first = lists
            _first_pair_plots(pair, refs[pair.name], lists, audio, models, out_dir, config)
    result = {
        "data_dir": str(data_dir),
        "reference": source,
        "pairs": [p.name for p in pairs],
        "checkpoints": {n: {"kind": k, "path": str(c)} for n, (k, c) in models.items()},
        "majority_action": _action_names(majority),
        "systems": {name: _summary(s) for name, s in systems.items()},
        "target_sweep": target_sweep.sweep(models, pairs, refs),
    }
    _confusions(result, models, out_dir)
    _curves(models, out_dir, result)
    _decoded_mel(models, pairs[0], refs[pairs[0].name], out_dir, result)
    write_text_atomic(out_dir / "metrics.json", json.dumps(result, indent=1, default=float) + "\n")
    write_text_atomic(out_dir / "report.md", render_markdown(result, first=list(lists_of_first)))
    return result


def _action_names(action: tuple[int, int, int]) -> str:
    from editorbot.editing.actions import ActionAmount, ActionSize, ActionType

    t, size, a = action
    return f"{ActionType(t).name} {ActionSize(size).name} {ActionAmount(a).name}"


def _progress(pairs: list[Pair], progress: bool) -> Any:
    if not progress:
        return pairs
    from rich.progress import track

    return track(pairs, description="evaluating pairs")


def _name_models(checkpoints: list[Path]) -> dict[str, tuple[str, Path]]:
    """``rl``, ``supervised`` (``rl_2`` … for a second checkpoint of one kind) -> (kind, path)."""
    from editorbot.inference.rl import read_checkpoint_meta

    out: dict[str, tuple[str, Path]] = {}
    for ckpt in checkpoints:
        kind = str(read_checkpoint_meta(ckpt).get("kind"))
        name, n = kind, 1
        while name in out:
            n += 1
            name = f"{kind}_{n}"
        out[name] = (kind, Path(ckpt))
    return out


def _references(
    pairs: list[Pair], data_dir: Path, labels_dir: str | Path | None, out_dir: Path
) -> tuple[dict[str, DecisionList], str]:
    """Reference decisions per pair and where they came from (``labels``/``truth``/``inferred``)."""
    truth = data_dir / "truth"
    if labels_dir is not None:
        folder, source = Path(labels_dir), "labels"
    elif all((truth / f"{p.name}.json").is_file() for p in pairs):
        folder, source = truth, "truth"
    else:
        from editorbot.editing.align_labels import label_files

        folder, source = out_dir / "labels", "inferred"
        for p in pairs:
            label_files(p.raw, p.edit, folder / f"{p.name}.json")
    refs = {p.name: DecisionList.load(folder / f"{p.name}.json") for p in pairs}
    for name, dl in refs.items():
        if dl.beat_times is None:
            raise DatasetError(f"{folder / name}.json: no beat_times; re-run `editorbot labels`")
    logger.info("reference decisions: %s (%s)", source, folder)
    return refs, f"{source} ({folder})"


def _model_list(kind: str, ckpt: Path, pair: Pair, out_dir: Path) -> DecisionList:
    """The decision list a learner makes for ``pair.raw`` (RL: written by ``edit_track``)."""
    if kind == "rl":
        from editorbot.inference.rl import edit_track

        paths = edit_track(pair.raw, checkpoint=ckpt, output=_edit_path(out_dir, pair, kind))
        return DecisionList.load(paths["decisions"])
    if kind == "supervised":
        from editorbot.inference.supervised import predict_decisions

        return predict_decisions(ckpt, pair.raw)
    from editorbot.errors import CheckpointError

    raise CheckpointError(f"{ckpt}: unknown checkpoint kind {kind!r}; expected rl or supervised")


def _tracked_grid(pair: Pair) -> DecisionList:
    """An empty decision list on the raw track's tracked beats (what a learner sees)."""
    from editorbot.audio.beats import track_beats
    from editorbot.audio.io import AudioConfig, analysis_signal

    audio = load_audio(pair.raw)
    beats = track_beats(analysis_signal(audio), sr=AudioConfig().analysis_sr, name=str(pair.raw))
    return DecisionList(audio.sr, beats.beat_times, (), downbeat_phase=beats.downbeat_phase)


def _edit_path(out_dir: Path, pair: Pair, system: str) -> Path:
    return out_dir / "edits" / f"{pair.name}_{system}.wav"


def _score_pair(
    pair: Pair,
    ref: DecisionList,
    lists: dict[str, DecisionList],
    systems: dict[str, _System],
    out_dir: Path,
    models: dict[str, Any],
    config: metrics.MetricsConfig,
) -> dict[str, np.ndarray]:
    """Render every system's list, score it; returns the mono audio by system (plus raw/human)."""
    raw, human = load_audio(pair.raw), load_audio(pair.edit)
    y_ref = _mono(human, config.sr)
    audio = {"raw": _mono(raw, config.sr), "human": y_ref}
    for name, dl in lists.items():
        result = render_decision_list(raw, dl)
        if name in models:
            write_audio(
                _edit_path(out_dir, pair, name),
                result.y,
                sr=result.sr,
                protect=(pair.raw, pair.edit),
            )
        y_est = _mono(Audio(result.y, result.sr), config.sr)
        audio[name] = y_est
        metrics.decision_scores(ref, dl, systems[name].scores)
        row: dict[str, Any] = {"track": pair.name}
        row |= metrics.boundary_scores(ref, dl, duration_sec=raw.duration_sec, config=config)
        row["duration_ratio_error"] = metrics.duration_ratio_error(y_est, y_ref)
        row |= metrics.aligned_spectral_distance(y_est, y_ref, config=config)
        seams = metrics.seam_samples(result.segments)
        row |= metrics.seam_discontinuity(
            to_mono(result.y), seams, sr=result.sr, window_ms=config.seam_window_ms
        )
        systems[name].per_track.append(row)
    return audio


def _mono(audio: Audio, sr: int) -> np.ndarray:
    """Mono at ``sr``; an edit that cut everything is scored as 0.1 s of silence."""
    y = to_mono(audio.y)
    if len(y) < audio.sr // 10:
        y = np.pad(y, (0, audio.sr // 10 - len(y)))
    return resample(y, orig_sr=audio.sr, target_sr=sr)


def _summary(system: _System) -> dict[str, Any]:
    labels = system.scores.summary()
    numeric = [k for k, v in system.per_track[0].items() if isinstance(v, int | float)]
    with warnings.catch_warnings():  # a metric that is NaN on every track stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        means = {k: float(np.nanmean([r[k] for r in system.per_track])) for k in numeric}
    return {**labels, **means, "per_track": system.per_track}


def _first_pair_plots(
    pair: Pair,
    ref: DecisionList,
    lists: dict[str, DecisionList],
    audio: dict[str, np.ndarray],
    models: dict[str, Any],
    out_dir: Path,
    config: metrics.MetricsConfig,
) -> None:
    from editorbot.evaluation.plots import plot_audio, plot_timeline

    shown = {
        "raw": audio["raw"],
        **{f"{m} edit": audio[m] for m in models},
        "human edit": audio["human"],
    }
    plot_audio(shown, sr=config.sr, path=out_dir / "audio.png")
    timeline = {"reference": ref, **{n: dl for n, dl in lists.items() if n != "oracle"}}
    plot_timeline(timeline, path=out_dir / "timeline.png")


def _confusions(result: dict[str, Any], models: dict[str, Any], out_dir: Path) -> None:
    from editorbot.evaluation.label_metrics import plot_confusion

    for name in models:
        plot_confusion(result["systems"][name], out_dir / f"confusion_{name}.png")


def _curves(models: dict[str, tuple[str, Path]], out_dir: Path, result: dict[str, Any]) -> None:
    """Training curves of each RL checkpoint (its run folder's ``progress.jsonl``)."""
    from editorbot.evaluation.plots import plot_curves, read_progress

    result["curves"] = {}
    for name, (kind, ckpt) in models.items():
        if kind != "rl":
            continue
        rows = read_progress(Path(ckpt).resolve().parent / "progress.jsonl")
        png = plot_curves(rows, path=out_dir / f"curves_{name}.png")
        if png is not None:
            result["curves"][name] = png.name


def _decoded_mel(
    models: dict[str, tuple[str, Path]],
    pair: Pair,
    ref: DecisionList,
    out_dir: Path,
    result: dict[str, Any],
) -> None:
    """The supervised decoder's mel beside the human edit's, on the first pair."""
    from editorbot.evaluation.decoded_mel import decoded_mels, plot_decoded_mel

    result["decoded_mel"] = {}
    for name, (kind, ckpt) in models.items():
        if kind == "supervised":
            png = out_dir / f"decoded_mel_{name}.png"
            plot_decoded_mel(decoded_mels(ckpt, pair.raw, pair.edit, ref), path=png)
            result["decoded_mel"][name] = png.name


def per_type_f1_table(systems: dict[str, Any], names: list[str]) -> list[str]:
    """Markdown rows: per-type F1 of each named system, side by side, with the reference support.

    Types shown are those in the reference or predicted by any of them.
    """
    first = systems[names[0]]["per_type"]
    rows = [
        "| type | support | " + " | ".join(f"{n} F1" for n in names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for t in first:
        if not any(
            systems[n]["per_type"][t]["support"] or systems[n]["per_type"][t]["precision"]
            for n in names
        ):
            continue
        f1 = " | ".join(f"{systems[n]['per_type'][t]['f1']:.3f}" for n in names)
        rows.append(f"| {t} | {first[t]['support']} | {f1} |")
    return rows


def render_markdown(result: dict[str, Any], *, first: list[str]) -> str:
    """The report: what was compared, the table, the pictures."""
    systems = result["systems"]
    lines = [
        "# editorbot evaluation",
        "",
        f"Held-out pairs: {len(result['pairs'])} from `{result['data_dir']}` "
        f"({', '.join(result['pairs'])}).",
        f"Reference decisions: {result['reference']}.",
        "Baselines (on the raw track's tracked beat grid, as the learners see it): keep_all "
        "(no edit), random (uniform valid actions, seeded), majority "
        f"(the most common reference action {result['majority_action']} where valid), "
        "oracle (rendering the reference decisions: the upper bound).",
        "",
        "| system | " + " | ".join(HEADLINE) + " |",
        "|---|" + "---:|" * len(HEADLINE),
    ]
    for name, s in systems.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(s.get(k)) for k in HEADLINE) + " |")
    lines += ["", *_comparison(systems, result["checkpoints"]), "", _METRIC_NOTES, ""]
    learners = [*result["checkpoints"], "keep_all"]
    lines += ["## Per-type F1 of each learner", "", *per_type_f1_table(systems, learners), ""]
    lines += target_sweep.markdown(result.get("target_sweep", {}))
    lines += [
        f"## First pair ({result['pairs'][0]})",
        "",
        "![audio](audio.png)",
        "",
        "![decision timeline](timeline.png)",
        "",
    ]
    for name in result["checkpoints"]:
        lines += [f"## {name}", "", f"![confusion {name}](confusion_{name}.png)", ""]
        lines += _per_type(systems[name])
        if name in result.get("decoded_mel", {}):
            lines += [
                "",
                "What the decoder learned (first pair): raw, decoder output, human edit mapped "
                "onto the raw time line (cut frames blank), human edit.",
                "",
                f"![decoded mel {name}]({result['decoded_mel'][name]})",
                "",
            ]
        if name in result.get("curves", {}):
            lines += ["", f"![training curves {name}]({result['curves'][name]})", ""]
    return "\n".join(lines) + "\n"


def _comparison(systems: dict[str, Any], checkpoints: dict[str, Any]) -> list[str]:
    """One line per learner and trivial baseline: type accuracy and log-mel L1, side by side."""
    out = []
    for m in checkpoints:
        for b in ("keep_all", "random", "majority"):
            sm, sb = systems[m], systems[b]
            better = (
                sm["type_accuracy"] > sb["type_accuracy"] and sm["log_mel_l1"] < sb["log_mel_l1"]
            )
            out.append(
                f"- {m} vs {b}: type accuracy {sm['type_accuracy']:.3f} vs "
                f"{sb['type_accuracy']:.3f} ({sm['type_accuracy'] - sb['type_accuracy']:+.3f}); "
                f"log-mel L1 {sm['log_mel_l1']:.3f} vs {sb['log_mel_l1']:.3f} "
                f"({sm['log_mel_l1'] - sb['log_mel_l1']:+.3f}, lower is better): "
                f"{'better on both' if better else 'not better on both'}"
            )
    return out


def _per_type(summary: dict[str, Any]) -> list[str]:
    rows = ["| type | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for t, m in summary["per_type"].items():
        if m["support"] or m["precision"]:
            rows.append(
                f"| {t} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
                f"{m['support']} |"
            )
    return rows


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, int | float) and np.isfinite(v) else "–"


_METRIC_NOTES = """\
Columns: per-raw-beat type / size / amount accuracy (size and amount where the type is right)
and effect macro F1 against the reference decisions, beats matched by time; cut-point hit rate
(recall) and F at ±0.5 s / ±3 s (`mir_eval.segment.detection`, boundaries where the per-beat type
changes, in raw time); |duration / human duration − 1|; log-mel L1 and multi-resolution STFT
distance (spectral convergence + log-magnitude L1) after DTW alignment of log-mel frames (0.1 s
hop) to the human edit; seam score: first-difference RMS in 5 ms around each seam over its
median in the output (≈1 smooth, ≫1 a click). Higher is better for accuracies and hit rates,
lower for the rest."""
