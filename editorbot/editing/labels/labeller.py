"""The global labeller: one frame path through the raw track explains the whole edit.

:func:`label_global` runs the path (:mod:`.path`), reads the edit's beats and effects off it
(:mod:`.explain`), parses them into the edit language (the one parse,
:func:`editorbot.editing.align_parse.parse_output`) and gives each effect decision the amount
of the action table closest to what was measured. Every threshold is a field of
:class:`~editorbot.editing.labels.config.GlobalConfig`, written into the list's meta.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from editorbot.audio.io import Audio, AudioConfig, analysis_signal
from editorbot.editing.actions import ActionType
from editorbot.editing.align_parse import Parsed, parse_output
from editorbot.editing.decisions import Decision, DecisionList
from editorbot.editing.labels.calibration import FEATURES, calibrated, evidence
from editorbot.editing.labels.config import GlobalConfig
from editorbot.editing.labels.explain import Beat, amount_for, explain, pieces
from editorbot.editing.labels.frames import band_hz, frames
from editorbot.editing.labels.path import best_path

_EFFECTS = frozenset(
    {ActionType.GAIN, ActionType.EQ_LOW, ActionType.EQ_HIGH, ActionType.PITCH_UP,
     ActionType.PITCH_DOWN, ActionType.SPEED_UP, ActionType.SPEED_DOWN, ActionType.FADE_IN,
     ActionType.FADE_OUT}
)  # fmt: skip


def label_global(
    raw: Audio,
    edit: Audio,
    *,
    beat_times: np.ndarray,
    downbeat_phase: int = 0,
    config: GlobalConfig | None = None,
) -> DecisionList:
    """The decision list that explains ``edit`` as ``raw`` under the edit language.

    Args:
        raw: the raw track (any rate and channels).
        edit: its edit (any rate and channels; compared as mono at the analysis rate).
        beat_times: [shape=(N,)] [s] the raw track's beats.
        downbeat_phase: [beats] the grid's first downbeat.
        config: settings.
    """
    config = config or GlobalConfig()
    sr = AudioConfig().analysis_sr
    y_raw, y_edit = analysis_signal(raw), analysis_signal(edit)
    hop = config.path.hop_length
    while (len(y_raw) / hop) * (len(y_edit) / hop) > config.path.max_cells:
        hop *= 2
    R = frames(y_raw, sr=sr, hop_length=hop, config=config.path)
    E = frames(y_edit, sr=sr, hop_length=hop, config=config.path)
    path = best_path(E.features, R.features, config.path)
    S = R.features.shape[1]
    tracked = np.asarray(beat_times, dtype=float)
    min_frames = max(
        3, int(config.explain.min_piece_beats * np.median(np.diff(tracked)) / R.hop_sec)
    )
    ps = pieces(path, min_frames=min_frames)
    beat_frames = np.append(tracked / R.hop_sec, float(S))
    beat_frames[0] = 0.0
    bands = band_hz(sr=sr, config=config.path)
    beats = explain(ps, path, R, E, beat_frames=beat_frames, band_hz=bands, config=config.explain)
    out = [b.out for b in beats]
    parsed = parse_output(out, n_beats=len(beat_times), downbeat_phase=downbeat_phase)
    pair_match = float(np.mean([b.confidence for b in beats])) if beats else 0.0
    X = np.array([_evidence(beats, p, pair_match) for p in parsed]).reshape(-1, len(FEATURES))
    cal = config.calibration
    conf = calibrated(X, cal.weights, cal.bias, cal.pair_spread) if cal.enabled else X[:, 0]
    decisions = []
    for p, confidence in zip(parsed, conf, strict=True):
        played = beats[p.out_start : p.out_end]
        amount = amount_for(p.type, played) if p.type in _EFFECTS else p.amount
        decisions.append(Decision(p.beat, p.type, p.size, amount, float(confidence)))
    meta = {
        "source": "editorbot labels (global path)",
        "mean_confidence": float(np.mean([d.confidence for d in decisions])) if decisions else 1.0,
        "low_confidence": [],
        "path": {"best": path.scale.best, "random": path.scale.random, "hop_sec": R.hop_sec,
                 "changed_frames": int(path.changed.sum())},
        "evidence": {"features": list(FEATURES), "rows": X.round(6).tolist()},
        "config": asdict(config),
    }  # fmt: skip
    return DecisionList(
        sample_rate=raw.sr,
        beat_times=np.asarray(beat_times, dtype=float),
        decisions=tuple(decisions),
        downbeat_phase=downbeat_phase,
        meta=meta,
    )


def _evidence(beats: list[Beat], p: Parsed, pair_match: float) -> np.ndarray:
    """The decision's evidence (:func:`~editorbot.editing.labels.calibration.evidence`): how
    well its output beats match (their pieces' match), the least share of a beat their pieces
    cover (a seam inside a beat: the grid disagrees with the editor's there), the share of its
    output the parse reproduces; a decision that plays nothing takes its neighbours' beats."""
    near = beats[p.out_start : p.out_end] or beats[max(0, p.out_start - 1) : p.out_start + 1]
    match = float(np.mean([b.confidence for b in near])) if near else 0.5
    share = min((b.share for b in near), default=0.5)
    reproduced = 1.0 - p.mismatches / max(1, p.out_end - p.out_start)
    return evidence(match=match, share=share, reproduced=reproduced,
                    n_beats=p.out_end - p.out_start, type_=p.type,
                    pair_match=pair_match)  # fmt: skip
