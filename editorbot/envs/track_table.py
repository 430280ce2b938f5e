"""Per-track beat tables for the editing environment, built once outside ``step()``.

A :class:`TrackTable` holds everything an episode reads: the normalised beat features, the
expert's decision per raw beat (the action whose segment consumed it), the expert's output map
(raw beat per output beat), per-beat energy and phrase starts, the tempo and the target
edit/raw duration ratio. ``step()`` only indexes these arrays.

Normalisation statistics (:class:`FeatureNormalizer`) are fitted on the training set's raw
feature tables and saved beside the tables (and in every checkpoint).

Tables are stored as one ``NAME.npz`` per track plus ``normalizer.json`` in a folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from editorbot.atomic import atomic_path, write_text_atomic
from editorbot.editing import actions as sm
from editorbot.errors import DatasetError

if TYPE_CHECKING:
    from editorbot.audio.analysis import TrackFeatures

logger = logging.getLogger(__name__)

NORMALIZER_FILE = "normalizer.json"
NO_EXPERT = -1
"""Expert label of a beat without a human edit (``reference/`` tracks): no agreement reward."""
TEMPO_BINS_BPM = (60.0, 80.0, 100.0, 120.0, 140.0, 160.0, 180.0)
"""[BPM] upper edges of the tempo classes of the auxiliary tempo head (8 classes)."""
N_ENERGY_CLASSES = 4
"""[classes] per-track energy quartiles for the auxiliary energy head."""
_TABLE_ARRAYS = (
    "features",
    "energy",
    "phrase_start",
    "expert_type",
    "expert_size",
    "expert_amount",
    "expert_actions",
    "expert_output_beats",
    "expert_output_types",
    "expert_confidence",
    "expert_weight",
)
_OPTIONAL_ARRAYS = ("expert_confidence", "expert_weight")
"""Arrays a table written before label confidence was stored lacks (read as confidence 1)."""


@dataclass(frozen=True)
class FeatureNormalizer:
    """Per-column z-score statistics fitted on the training set's beat features."""

    mean: np.ndarray
    """[feature units] per-column mean, shape (F,)."""
    std: np.ndarray
    """[feature units] per-column standard deviation (floored at 1e-6), shape (F,)."""

    @classmethod
    def fit(cls, tables: Sequence[np.ndarray]) -> FeatureNormalizer:
        """Fit on a list of (n_beats, F) raw feature tables (all beats weigh the same)."""
        if not tables:
            raise DatasetError("no feature tables to fit the normaliser on; check --data-dir")
        x = np.concatenate([np.asarray(t, np.float64) for t in tables], axis=0)
        # 1e-6 floor: constant columns (e.g. stems off = zeros) map to 0 instead of NaN.
        return cls(x.mean(0).astype(np.float32), np.maximum(x.std(0), 1e-6).astype(np.float32))

    def apply(self, features: np.ndarray) -> np.ndarray:
        """Normalise a (n, F) table; returns float32."""
        return ((features - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> FeatureNormalizer:
        return cls(np.asarray(data["mean"], np.float32), np.asarray(data["std"], np.float32))

    def save(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> FeatureNormalizer:
        """Read a saved normaliser.

        Raises:
            DatasetError: missing, not JSON, a field missing, a non-finite entry, a standard
                deviation <= 0, or ``mean`` and ``std`` of different lengths.
        """
        from editorbot.safe_load import finite_floats, read_json_object

        data = read_json_object(path, error=DatasetError)
        mean, std = (
            finite_floats(data.get(k), where=f"{path}: {k}", error=DatasetError)
            for k in ("mean", "std")
        )
        if len(mean) != len(std) or min(std, default=0.0) <= 0:
            raise DatasetError(
                f"{path}: std must be positive and as long as mean ({len(std)} vs {len(mean)})"
            )
        return cls(np.asarray(mean, np.float32), np.asarray(std, np.float32))


@dataclass(frozen=True, eq=False)
class TrackTable:
    """Everything the environment reads about one raw track.

    Shape:
        features: (n, F) float32, normalised beat features.
        energy, phrase_start, expert_type/size/amount: (n,).
        expert_actions: (k, 3) int64, the expert decision list as (type, size, amount).
        expert_output_beats, expert_output_types: (m,) raw beat and type per output beat.
        expert_confidence: (k,) float32; expert_weight: (n,) float32.
    """

    name: str
    """Track name (the raw file's stem without ``_raw``)."""
    features: np.ndarray
    """[z-scores] normalised beat features, (n, F)."""
    tempo_bpm: float
    """[BPM] global tempo."""
    beat_sec: float
    """[s] mean beat duration (output durations are counted in beats and converted with it)."""
    target_ratio: float
    """[ratio] duration of the human edit / duration of the raw track."""
    downbeat_phase: int
    """[beats] index in 0..3 of the first downbeat (bars start at phase + 4 m)."""
    energy: np.ndarray
    """[RMS, linear] per-beat energy, (n,)."""
    phrase_start: np.ndarray
    """[flag] 1 where a phrase starts, (n,)."""
    expert_type: np.ndarray = field(repr=False)
    """[ActionType or NO_EXPERT] the type of the expert action that consumed each beat."""
    expert_size: np.ndarray = field(repr=False)
    """[ActionSize or NO_EXPERT] its size."""
    expert_amount: np.ndarray = field(repr=False)
    """[ActionAmount or NO_EXPERT] its amount."""
    expert_actions: np.ndarray = field(repr=False)
    """[(type, size, amount)] the expert decision list, (k, 3)."""
    expert_output_beats: np.ndarray = field(repr=False)
    """[raw beat index] the human edit's output map, (m,)."""
    expert_output_types: np.ndarray = field(repr=False)
    """[ActionType] the type applied to each output beat of the human edit, (m,)."""
    expert_confidence: np.ndarray = field(repr=False)
    """[0, 1] confidence of each expert action, (k,): the labeller's for inferred labels, 1 for
    true decisions and for the KEEP steps that fill a list's undecided gaps."""
    expert_weight: np.ndarray = field(repr=False)
    """[0, 1] per raw beat, the confidence of the expert action that consumed it (0 where none
    did), (n,): what the agreement reward pays a matching beat."""

    @property
    def n_beats(self) -> int:
        return int(self.features.shape[0])

    @property
    def has_expert(self) -> bool:
        return bool(self.expert_actions.shape[0] > 0)

    def tempo_bin(self) -> int:
        """Auxiliary tempo class: index of the first bin edge above the tempo (0..8)."""
        return int(np.searchsorted(np.asarray(TEMPO_BINS_BPM), self.tempo_bpm))

    def energy_class(self) -> np.ndarray:
        """Auxiliary energy class per beat: the track's energy quartile (0..3), (n,)."""
        edges = np.quantile(self.energy, np.linspace(0, 1, N_ENERGY_CLASSES + 1)[1:-1])
        return np.searchsorted(edges, self.energy).astype(np.float32)

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/NAME.npz`` atomically."""
        path = Path(folder) / f"{self.name}.npz"
        scalars = np.asarray(
            [self.tempo_bpm, self.beat_sec, self.target_ratio, self.downbeat_phase], np.float64
        )
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, scalars=scalars, **{k: getattr(self, k) for k in _TABLE_ARRAYS})
        return path

    @classmethod
    def load(cls, path: str | Path) -> TrackTable:
        path = Path(path)
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in _TABLE_ARRAYS if k in z or k not in _OPTIONAL_ARRAYS}
                tempo, beat_sec, ratio, phase = (float(v) for v in z["scalars"])
            if "expert_confidence" not in arrays:  # written before confidence was stored
                arrays["expert_confidence"] = np.ones(len(arrays["expert_actions"]), np.float32)
                arrays["expert_weight"] = (arrays["expert_type"] != NO_EXPERT).astype(np.float32)
        except (OSError, KeyError, ValueError) as e:
            raise DatasetError(f"{path}: not a track table ({e}); rebuild with bc-data") from e
        return cls(
            path.stem,
            tempo_bpm=tempo,
            beat_sec=beat_sec,
            target_ratio=ratio,
            downbeat_phase=int(phase),
            **arrays,
        )


def table_from_analysis(
    name: str,
    analysis: TrackFeatures,
    normalizer: FeatureNormalizer,
    *,
    expert_actions: np.ndarray | None = None,
    expert_confidence: np.ndarray | None = None,
    target_ratio: float | None = None,
) -> TrackTable:
    """The policy's table of one analysed track: what training and ``edit`` both build.

    Columns are looked up by name and the phrases and tempo come from the grid, so the table
    depends only on (grid, raw features, normaliser) wherever it is built.

    Args:
        name: track name.
        analysis: the track's grid and raw beat features (``audio.analysis``).
        normalizer: the training set's feature statistics.
        expert_actions: [shape=(k, 3)] the expert's list, or None (no human edit).
        expert_confidence: [shape=(k,)] each expert action's label confidence; None = 1.
        target_ratio: [ratio] edit/raw duration; defaults to the replayed output's.
    """
    from editorbot.audio.features import feature_index

    grid = analysis.grid
    phrase_start = np.zeros(grid.n_beats, np.float32)
    phrase_start[grid.phrase_starts()] = 1.0
    return build_table(
        name,
        features=normalizer.apply(analysis.features),
        tempo_bpm=grid.tempo_bpm,
        beat_sec=60.0 / grid.tempo_bpm,  # [s/min] / [beats/min]
        energy=analysis.features[:, feature_index("rms")].astype(np.float32),
        phrase_start=phrase_start,
        expert_actions=expert_actions,
        expert_confidence=expert_confidence,
        downbeat_phase=grid.downbeat_phase,
        target_ratio=target_ratio,
    )


def build_table(
    name: str,
    *,
    features: np.ndarray,
    tempo_bpm: float,
    beat_sec: float,
    energy: np.ndarray,
    phrase_start: np.ndarray,
    expert_actions: np.ndarray | None,
    expert_confidence: np.ndarray | None = None,
    downbeat_phase: int = 0,
    target_ratio: float | None = None,
) -> TrackTable:
    """Build a table from normalised features and the expert decision list.

    The decision list is replayed through the edit state machine (the environment's), which
    gives each raw beat the action that consumed it and the human edit's output map.

    Args:
        name: track name.
        features: [shape=(n, F)] normalised beat features.
        tempo_bpm: [BPM] global tempo.
        beat_sec: [s] mean beat duration.
        energy: [shape=(n,)] per-beat RMS.
        phrase_start: [shape=(n,)] 1 where a phrase starts.
        downbeat_phase: [beats] index in 0..3 of the first downbeat.
        expert_actions: [shape=(k, 3)] the expert's (type, size, amount) list, or None for a
            track without a human edit.
        expert_confidence: [shape=(k,)] each expert action's label confidence in [0, 1];
            None = 1 (true decisions).
        target_ratio: [ratio] edit/raw duration; defaults to the replayed output's.

    Raises:
        DatasetError: if the decision list does not cover the track or takes a masked action,
            or the confidences are not one in [0, 1] per action.
    """
    n = int(features.shape[0])
    actions = np.zeros((0, 3), np.int64) if expert_actions is None else np.asarray(expert_actions)
    if expert_confidence is None:
        confidence = np.ones(len(actions), np.float32)
    else:
        confidence = np.asarray(expert_confidence, np.float32).reshape(-1)
    if len(confidence) != len(actions) or not np.all((confidence >= 0) & (confidence <= 1)):
        raise DatasetError(
            f"{name}: {len(confidence)} label confidences in [0, 1] expected one per each of "
            f"{len(actions)} expert actions; re-run the labels"
        )
    labels, out_beats, out_types, out_duration = replay_expert(
        n, actions, downbeat_phase=downbeat_phase, name=name
    )
    if target_ratio is None:
        target_ratio = out_duration / n if len(actions) else 1.0
    return TrackTable(
        name,
        features=np.asarray(features, np.float32),
        tempo_bpm=float(tempo_bpm),
        beat_sec=float(beat_sec),
        target_ratio=float(target_ratio),
        downbeat_phase=int(downbeat_phase),
        energy=np.asarray(energy, np.float32),
        phrase_start=np.asarray(phrase_start, np.float32),
        expert_type=labels[:, 0],
        expert_size=labels[:, 1],
        expert_amount=labels[:, 2],
        expert_actions=actions.astype(np.int64),
        expert_output_beats=out_beats,
        expert_output_types=out_types,
        expert_confidence=confidence,
        expert_weight=beat_weights(n, actions, confidence, downbeat_phase=downbeat_phase),
    )


def uniform_confidence(table: TrackTable) -> TrackTable:
    """``table`` with every expert action at confidence 1 (labels taken as certain)."""
    return dataclasses.replace(
        table,
        expert_confidence=np.ones(len(table.expert_actions), np.float32),
        expert_weight=(table.expert_type != NO_EXPERT).astype(np.float32),
    )


def beat_weights(
    n_beats: int, actions: np.ndarray, confidence: np.ndarray, *, downbeat_phase: int = 0
) -> np.ndarray:
    """[shape=(n_beats,)] float32: per raw beat, the confidence of the action that consumed it
    (0 where none did). ``actions`` must replay (as :func:`replay_expert` checks)."""
    weight = np.zeros(n_beats, np.float32)
    state = sm.initial_state(n_beats, downbeat_phase=downbeat_phase)
    for (t, s, a), c in zip(np.asarray(actions, np.int64).tolist(), confidence, strict=True):
        start = int(state.cursor)
        state, _ = sm.step(state, t, s, a)
        weight[start : int(state.cursor)] = c
    return weight


def replay_expert(
    n_beats: int, actions: np.ndarray, *, downbeat_phase: int = 0, name: str = "<track>"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Replay a decision list through the state machine.

    Returns:
        labels [shape=(n, 3)] (type, size, amount) per raw beat (NO_EXPERT where no action
        consumed it), output raw beats (m,), output types (m,), output duration in beats.
    """
    labels = np.full((n_beats, 3), NO_EXPERT, np.int16)
    out_beats: list[np.ndarray] = []
    out_types: list[np.ndarray] = []
    duration = 0.0
    state = sm.initial_state(n_beats, downbeat_phase=downbeat_phase)
    for i, (t, s, a) in enumerate(np.asarray(actions, np.int64).tolist()):
        type_mask, size_mask, amount_mask = sm.action_masks(state)
        if not (type_mask[t] and size_mask[t, s] and amount_mask[t, a]):
            raise DatasetError(
                f"{name}: expert action {i} {(t, s, a)} is not allowed at beat "
                f"{int(state.cursor)}; re-run the alignment"
            )
        start = int(state.cursor)
        state, segments = sm.step(state, t, s, a)
        labels[start : int(state.cursor)] = (t, s, a)
        duration += collect_output(segments, out_beats, out_types)
    if len(actions) and int(state.cursor) < n_beats:
        raise DatasetError(
            f"{name}: the decision list stops at beat {int(state.cursor)} of {n_beats}; "
            "re-run the alignment"
        )
    duration += collect_output(sm.finish(state), out_beats, out_types)
    cat = np.concatenate
    return (
        labels,
        cat(out_beats) if out_beats else np.zeros(0, np.int64),
        cat(out_types) if out_types else np.zeros(0, np.int64),
        duration,
    )


def collect_output(
    segments: Sequence[sm.PlannedSegment], out_beats: list[np.ndarray], out_types: list[np.ndarray]
) -> float:
    """Append planned segments' output (raw beat and type per output beat) to the lists.

    A REPEAT_PREV segment indexes the output written so far, which is read back from the lists.

    Returns:
        [beats] the output duration the segments add (time-stretched types scaled by their
        speed ratio).
    """
    duration = 0.0
    for seg in segments:
        if seg.from_output:
            so_far = np.concatenate(out_beats) if out_beats else np.zeros(0, np.int64)
            beats = so_far[seg.start_beat : seg.end_beat]
        else:
            beats = np.arange(seg.start_beat, seg.end_beat, dtype=np.int64)
        if seg.repeats > 1:
            beats = np.tile(beats, seg.repeats)
        out_beats.append(beats)
        out_types.append(np.full(len(beats), int(seg.type), np.int64))
        duration += len(beats) / speed_ratio(seg)
    return duration


def speed_ratio(seg: sm.PlannedSegment) -> float:
    """[ratio] playback speed of a segment (output duration = input duration / ratio)."""
    if seg.type == sm.ActionType.SPEED_UP or seg.type == sm.ActionType.SPEED_DOWN:
        return float(sm.AMOUNT_VALUES[seg.type, seg.amount])
    return 1.0


def load_tables(folder: str | Path) -> tuple[list[TrackTable], FeatureNormalizer | None]:
    """All ``*.npz`` track tables in ``folder`` (sorted by name) and its normaliser, if saved."""
    folder = Path(folder)
    paths = sorted(folder.glob("*.npz"))
    if not paths:
        raise DatasetError(
            f"{folder}: no track tables (*.npz); build them with `editorbot bc-data`"
        )
    norm_path = folder / NORMALIZER_FILE
    normalizer = FeatureNormalizer.load(norm_path) if norm_path.exists() else None
    return [TrackTable.load(p) for p in paths], normalizer


def save_tables(
    folder: str | Path, tables: Sequence[TrackTable], normalizer: FeatureNormalizer | None
) -> None:
    """Write every table and the normaliser into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for table in tables:
        table.save(folder)
    if normalizer is not None:
        normalizer.save(folder / NORMALIZER_FILE)
