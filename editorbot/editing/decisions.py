"""Edit decision lists: the versioned JSON form of an edit, its validation and its plan.

Format (version 1)::

    {"version": 1, "sample_rate": 44100, "beat_times": [0.0, 0.5, ...] or null,
     "downbeat_phase": 0,
     "decisions": [{"beat": 0, "type": "KEEP", "size": "BAR", "amount": "NEUTRAL",
                    "confidence": 1.0}, ...],
     "meta": {...}}

Types, sizes and amounts are stored by NAME (:mod:`editorbot.editing.actions`). Decisions are in
cursor order; raw beats no decision covers are kept unchanged. A JUMP_BACK does not move the
cursor, so the decision after it may share its beat. ``beat_times`` [s] makes a render
reproducible without re-tracking beats.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from editorbot.atomic import write_text_atomic
from editorbot.editing.actions import (
    ActionAmount,
    ActionSize,
    ActionType,
    EditState,
    PlannedSegment,
    action_masks,
    finish,
    initial_state,
    is_valid,
    keep_until,
    step,
)
from editorbot.errors import DatasetError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_FILE_BYTES = 16 * 2**20
"""[bytes] largest decision list read (a 10-hour track at 200 BPM needs about 10 MB)."""
MAX_BEATS = 2**20
"""[beats] largest beat index or grid (about 87 hours at 200 BPM)."""
MAX_SAMPLE_RATE = 768_000
"""[Hz] highest sample rate a decision list may name."""
"""The decision-list format this code writes and reads."""

GAP_DECISION = -1
"""Decision index of the segments that keep beats no decision covers."""


@dataclass(frozen=True)
class Decision:
    """One edit action at a raw beat."""

    beat: int
    """[beats] raw beat the action starts at (the cursor when it is taken)."""
    type: ActionType
    """What the action does."""
    size: ActionSize
    """How many beats it consumes."""
    amount: ActionAmount
    """How strongly (meaning per type in the action table)."""
    confidence: float = 1.0
    """[0..1] how sure the source (alignment, policy) is of this decision."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "beat": int(self.beat),
            "type": self.type.name,
            "size": self.size.name,
            "amount": self.amount.name,
            "confidence": float(self.confidence),
        }


@dataclass(frozen=True, eq=False)
class DecisionList:
    """A whole edit of one raw track."""

    sample_rate: int
    """[Hz] rate of the raw track the decisions were made on."""
    beat_times: np.ndarray | None
    """[shape=(n_beats,)] [s] beat onsets of the raw track; None = track beats when rendering."""
    decisions: tuple[Decision, ...]
    """The actions, in cursor order."""
    version: int = FORMAT_VERSION
    """Format version."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Free-form provenance (style, seed, model checkpoint ...), kept as is."""
    downbeat_phase: int = 0
    """[beats] index in 0..3 of the first downbeat (bars and SKIP boundaries)."""

    def to_json(self) -> str:
        """The JSON text of the list (names, not numbers, for types, sizes, amounts)."""
        bt = None if self.beat_times is None else [float(t) for t in self.beat_times]
        return json.dumps(
            {
                "version": self.version,
                "sample_rate": int(self.sample_rate),
                "beat_times": bt,
                "downbeat_phase": int(self.downbeat_phase),
                "decisions": [d.to_dict() for d in self.decisions],
                "meta": self.meta,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str, *, name: str = "<decisions>") -> DecisionList:
        """Parse JSON text; ``name`` (a path) is named in every error.

        Raises:
            DatasetError: not JSON, missing keys, unknown names, unsupported version.
        """
        from editorbot.safe_load import MAX_JSON_DEPTH, nesting_depth

        if len(text) > MAX_FILE_BYTES:
            raise DatasetError(f"{name}: more than {MAX_FILE_BYTES} characters of decision list")
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as e:  # JSONDecodeError, huge ints, deep nesting
            raise DatasetError(
                f"{name}: not valid JSON ({type(e).__name__}: {e}); re-export the decision list"
            ) from e
        if not isinstance(obj, dict):
            raise DatasetError(f"{name}: expected a JSON object with 'decisions'")
        if nesting_depth(obj) > MAX_JSON_DEPTH:
            raise DatasetError(f"{name}: nested deeper than {MAX_JSON_DEPTH} levels")
        return _parse(obj, name)

    def save(self, path: str | Path) -> Path:
        """Write the JSON atomically."""
        write_text_atomic(path, self.to_json() + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> DecisionList:
        """Read a decision list file (errors name the file)."""
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f"{path}: no such decision list; check the path")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DatasetError(
                f"{path}: {size} bytes, more than a decision list may hold ({MAX_FILE_BYTES})"
            )
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(f"{path}: unreadable decision list ({e})") from e
        return cls.from_json(text, name=str(path))

    def beat_samples(self) -> np.ndarray | None:
        """[shape=(n_beats,)] int64 beat positions in samples (None if ``beat_times`` is)."""
        if self.beat_times is None:
            return None
        return np.round(np.asarray(self.beat_times) * self.sample_rate).astype(np.int64)

    def validate(self, n_beats: int, *, name: str = "<decisions>") -> None:
        """Check the list against a grid of ``n_beats`` beats.

        Raises:
            DatasetError: unsupported version, beat out of range, overlapping decisions, an
                action the state machine does not allow there (amount invalid for the type,
                size past the end, JUMP_BACK with too little behind it ...).
        """
        plan_segments(self, n_beats, name=name)

    def to_action_array(self) -> np.ndarray:
        """[shape=(n, 3)] int64 (type, size, amount) per decision, for the RL side."""
        return np.array(
            [(d.type, d.size, d.amount) for d in self.decisions], dtype=np.int64
        ).reshape(-1, 3)


def _parse(obj: dict[str, Any], name: str) -> DecisionList:
    version = obj.get("version")
    if version != FORMAT_VERSION:
        raise DatasetError(
            f"{name}: unsupported decision-list version {version!r}; this editorbot reads "
            f"version {FORMAT_VERSION}"
        )
    for key in ("sample_rate", "decisions"):
        if key not in obj:
            raise DatasetError(f"{name}: missing key {key!r}")
    raw = obj["decisions"]
    if not isinstance(raw, list):
        raise DatasetError(f"{name}: 'decisions' must be a list")
    bt = obj.get("beat_times")
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise DatasetError(f"{name}: 'meta' must be an object, got {type(meta).__name__}")
    return DecisionList(
        sample_rate=_int(obj["sample_rate"], f"{name}: sample_rate", lo=1, hi=MAX_SAMPLE_RATE),
        beat_times=None if bt is None else _beat_times(bt, name),
        decisions=tuple(_parse_decision(d, i, name) for i, d in enumerate(raw)),
        version=FORMAT_VERSION,
        meta=dict(meta),
        downbeat_phase=_int(obj.get("downbeat_phase", 0), f"{name}: downbeat_phase", lo=0),
    )


def _int(value: Any, where: str, *, lo: int = 0, hi: int = MAX_BEATS) -> int:
    """``value`` as an int in ``[lo, hi]``: a JSON integer, or a float with no fraction.

    Raises:
        DatasetError: a string, a fraction (3.7 is not silently 3), NaN/inf, out of range.
    """
    ok = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value, ok = int(value), True
    if not ok:
        raise DatasetError(f"{where}: {value!r} is not a whole number")
    if not lo <= value <= hi:
        raise DatasetError(f"{where}: {value} outside [{lo}, {hi}]")
    return int(value)


def _beat_times(values: Any, name: str) -> np.ndarray:
    from editorbot.safe_load import finite_floats

    times = np.asarray(finite_floats(values, where=f"{name}: beat_times", error=DatasetError))
    if len(times) > MAX_BEATS or np.any(times < 0) or np.any(np.diff(times) <= 0):
        raise DatasetError(
            f"{name}: beat_times must be at most {MAX_BEATS} non-negative, increasing times [s]"
        )
    return times


def _enum(cls: Any, value: Any, what: str, i: int, name: str) -> Any:
    try:
        return cls[value]
    except (KeyError, TypeError):
        valid = ", ".join(m.name for m in cls)
        raise DatasetError(
            f"{name}: decision {i}: unknown {what} {value!r}; valid: {valid}"
        ) from None


def _parse_decision(d: Any, i: int, name: str) -> Decision:
    if not isinstance(d, dict) or "beat" not in d or "type" not in d:
        raise DatasetError(f"{name}: decision {i}: expected an object with 'beat' and 'type'")
    conf = d.get("confidence", 1.0)
    if isinstance(conf, bool) or not isinstance(conf, int | float) or not 0.0 <= conf <= 1.0:
        raise DatasetError(f"{name}: decision {i}: confidence {conf!r} outside [0, 1]")
    return Decision(
        beat=_int(d["beat"], f"{name}: decision {i}: beat"),
        type=_enum(ActionType, d["type"], "type", i, name),
        size=_enum(ActionSize, d.get("size", "BEAT"), "size", i, name),
        amount=_enum(ActionAmount, d.get("amount", "NEUTRAL"), "amount", i, name),
        confidence=float(conf),
    )


def plan_segments(
    dl: DecisionList, n_beats: int, *, name: str = "<decisions>"
) -> list[tuple[int, PlannedSegment]]:
    """Run the decisions through the edit state machine.

    Returns:
        (decision index, segment) for every output segment in output order; undecided gaps
        are kept and carry index :data:`GAP_DECISION`.

    Raises:
        DatasetError: see :meth:`DecisionList.validate`.
    """
    if dl.version != FORMAT_VERSION:
        raise DatasetError(f"{name}: unsupported decision-list version {dl.version!r}")
    state = initial_state(n_beats, downbeat_phase=dl.downbeat_phase)
    out: list[tuple[int, PlannedSegment]] = []
    deferred_owner: list[int] = []
    for i, d in enumerate(dl.decisions):
        state, gap = _advance_to(state, d, i, name)
        out += [(GAP_DECISION, p) for p in gap]
        _check_action(state, d, i, name)
        n_deferred = len(state.deferred)
        state, segs = step(state, d.type, d.size, d.amount)
        out += [(i, p) for p in segs]
        deferred_owner += [i] * (len(state.deferred) - n_deferred)
    state, gap = keep_until(state, n_beats)
    out += [(GAP_DECISION, p) for p in gap]
    out += list(zip(deferred_owner, finish(state), strict=True))
    return out


def _advance_to(
    state: EditState, d: Decision, i: int, name: str
) -> tuple[EditState, list[PlannedSegment]]:
    if not 0 <= d.beat < state.n_beats:
        raise DatasetError(
            f"{name}: decision {i} ({d.type.name}) at beat {d.beat} is outside the track's "
            f"{state.n_beats} beats; the decisions do not belong to this track"
        )
    if d.beat < state.cursor:
        raise DatasetError(
            f"{name}: decision {i} ({d.type.name}) at beat {d.beat} overlaps the previous "
            f"decision, which covers up to beat {state.cursor}; remove or move one of them"
        )
    return keep_until(state, d.beat)


def _check_action(state: EditState, d: Decision, i: int, name: str) -> None:
    if is_valid(state, d.type, d.size, d.amount):
        return
    type_mask, size_mask, amount_mask = action_masks(state)
    where = f"{name}: decision {i} at beat {d.beat}: {d.type.name} {d.size.name} {d.amount.name}"
    if not amount_mask[d.type, d.amount]:
        valid = [ActionAmount(int(a)).name for a in np.flatnonzero(amount_mask[d.type])]
        raise DatasetError(f"{where}: amount invalid for the type here; valid: {valid}")
    if not size_mask[d.type, d.size]:
        raise DatasetError(
            f"{where}: size does not fit ({state.n_beats - state.cursor} beats left, "
            f"{state.n_output_beats} output beats behind); use a smaller size"
        )
    raise DatasetError(f"{where}: not allowed here (e.g. two JUMP_BACKs in a row)")


def decisions_from_actions(
    actions: np.ndarray,
    *,
    n_beats: int,
    sample_rate: int,
    beat_times: np.ndarray | None = None,
    downbeat_phase: int = 0,
    confidence: np.ndarray | None = None,
    meta: dict[str, Any] | None = None,
) -> DecisionList:
    """Build a decision list from an episode's actions, replaying them to find their beats.

    Args:
        actions: [shape=(n, 3)] int (type, size, amount) per step, in order.
        n_beats: [beats] length of the raw grid.
        sample_rate: [Hz] of the raw track.
        beat_times: [shape=(n_beats,)] [s], stored for reproducible renders.
        downbeat_phase: [beats] first downbeat index (0..3).
        confidence: [shape=(n,)] per decision in [0, 1]; default 1.

    Raises:
        DatasetError: an action is invalid where it is taken.
    """
    actions = np.asarray(actions, dtype=np.int64).reshape(-1, 3)
    state = initial_state(n_beats, downbeat_phase=downbeat_phase)
    conf = np.ones(len(actions)) if confidence is None else np.asarray(confidence, dtype=float)
    decisions = []
    for i, (t, s, a) in enumerate(actions.tolist()):
        d = Decision(state.cursor, ActionType(t), ActionSize(s), ActionAmount(a), float(conf[i]))
        _check_action(state, d, i, "<actions>")
        decisions.append(d)
        state, _ = step(state, t, s, a)
    return DecisionList(
        sample_rate=int(sample_rate),
        beat_times=None if beat_times is None else np.asarray(beat_times, dtype=np.float64),
        decisions=tuple(decisions),
        meta=dict(meta or {}),
        downbeat_phase=int(downbeat_phase) % 4,
    )
