"""The edit language's action table: 20 types × 5 sizes × 5 amounts.

This module is the only place the numbers of the edit language appear. The renderer, the
environment, the alignment, the reward and the tests read it.

It also holds the one symbolic state machine of an edit: :class:`EditState`,
:func:`action_masks`, :func:`step` and :func:`finish`. ``step`` says which raw beat ranges go
to the output with which effect; it never touches audio, so the environment can call it tens
of thousands of times per second, and the renderer turns its :class:`PlannedSegment` list into
samples.

Beat grid convention: beat ``i`` covers raw samples ``[beat_samples[i], beat_samples[i + 1])``;
audio before beat 0 belongs to beat 0 and audio after the last beat to the last beat.
Bars and phrases start on beats ``b`` with ``(b - downbeat_phase) % n == 0`` (n = 4 or 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class ActionType(IntEnum):
    """What an action does to the segment under the cursor."""

    KEEP = 0
    CUT = 1
    LOOP = 2
    REORDER = 3
    JUMP_BACK = 4
    SKIP = 5
    FADE_IN = 6
    FADE_OUT = 7
    GAIN = 8
    SPEED_UP = 9
    SPEED_DOWN = 10
    REVERSE = 11
    PITCH_UP = 12
    PITCH_DOWN = 13
    EQ_LOW = 14
    EQ_HIGH = 15
    DISTORTION = 16
    REVERB = 17
    REPEAT_PREV = 18
    SWAP_NEXT = 19


class ActionSize(IntEnum):
    """How many beats an action consumes (a 4/4 grid: bar = 4 beats, phrase = 4 bars)."""

    BEAT = 0
    BAR = 1
    TWO_BARS = 2
    PHRASE = 3
    TWO_PHRASES = 4

    @property
    def n_beats(self) -> int:
        return SIZE_BEATS[self]


class ActionAmount(IntEnum):
    """How strongly; what it means per type is in the type's amount table."""

    NEG_LARGE = 0
    NEG_SMALL = 1
    NEUTRAL = 2
    POS_SMALL = 3
    POS_LARGE = 4


N_TYPES = len(ActionType)
N_SIZES = len(ActionSize)
N_AMOUNTS = len(ActionAmount)

SIZE_BEATS: dict[ActionSize, int] = {
    ActionSize.BEAT: 1,
    ActionSize.BAR: 4,
    ActionSize.TWO_BARS: 8,
    ActionSize.PHRASE: 16,
    ActionSize.TWO_PHRASES: 32,
}


# ---------------------------------------------------------------------------------------------
# The amount table. One row per type that takes an amount; values ordered NEG_LARGE..POS_LARGE;
# None = that amount is invalid for the type. Types not listed accept NEUTRAL only (value 0.0).
# ---------------------------------------------------------------------------------------------
_T = ActionType
_AMOUNT_TABLE: dict[ActionType, tuple[float | None, ...]] = {
    # [repeats] how many times the segment plays (DESIGN §3: 2×, 3×, 4×).
    _T.LOOP: (None, None, 2.0, 3.0, 4.0),
    # [beats] jump distance k behind the cursor.
    _T.JUMP_BACK: (4.0, 8.0, 16.0, 32.0, 64.0),
    # [dB] attenuation at the quiet end of the fade; 80 dB is silence (below the -80 dBFS
    # floor of AudioConfig.silence_dbfs) while keeping the table finite for numeric consumers.
    _T.FADE_IN: (6.0, 12.0, 24.0, 48.0, 80.0),
    _T.FADE_OUT: (6.0, 12.0, 24.0, 48.0, 80.0),
    # [dB] gain; NEUTRAL would be KEEP.
    _T.GAIN: (-6.0, -3.0, None, 3.0, 6.0),
    # [ratio] playback speed (output duration = input / ratio), pitch kept.
    _T.SPEED_UP: (1.05, 1.1, 1.2, 1.33, 1.5),
    _T.SPEED_DOWN: (0.95, 0.9, 0.83, 0.75, 0.67),
    # [semitones] pitch shift, duration kept.
    _T.PITCH_UP: (1.0, 2.0, 3.0, 5.0, 7.0),
    _T.PITCH_DOWN: (-1.0, -2.0, -3.0, -5.0, -7.0),
    # [dB] shelf gain (low shelf at EQ_LOW_HZ, high shelf at EQ_HIGH_HZ); NEUTRAL would be KEEP.
    _T.EQ_LOW: (-6.0, -3.0, None, 3.0, 6.0),
    _T.EQ_HIGH: (-6.0, -3.0, None, 3.0, 6.0),
    # [dB] overdrive drive (pre-gain into the soft clipper).
    _T.DISTORTION: (6.0, 12.0, 20.0, 30.0, 40.0),
    # [s] reverb decay time RT60 (time for the room response to fall 60 dB).
    _T.REVERB: (0.3, 0.6, 1.0, 1.6, 2.5),
}
del _T

EQ_LOW_HZ = 200.0
"""[Hz] corner frequency of the EQ_LOW shelf."""
EQ_HIGH_HZ = 4000.0
"""[Hz] corner frequency of the EQ_HIGH shelf."""

STRUCTURAL_TYPES = frozenset(
    {
        ActionType.KEEP,
        ActionType.CUT,
        ActionType.LOOP,
        ActionType.REORDER,
        ActionType.JUMP_BACK,
        ActionType.SKIP,
        ActionType.REPEAT_PREV,
        ActionType.SWAP_NEXT,
    }
)
"""Types that rearrange raw audio without changing its samples."""

_NEUTRAL_ONLY = (None, None, 0.0, None, None)
# [N_TYPES, N_AMOUNTS] value table and validity, as arrays for the masks.
AMOUNT_VALUES = np.array(
    [[np.nan if v is None else v for v in _AMOUNT_TABLE.get(t, _NEUTRAL_ONLY)] for t in ActionType]
)
"""[shape=(N_TYPES, N_AMOUNTS)] amount values (NaN where invalid)."""
AMOUNT_VALID = ~np.isnan(AMOUNT_VALUES)
"""[shape=(N_TYPES, N_AMOUNTS)] which amounts each type accepts."""
_SIZES = np.array([SIZE_BEATS[s] for s in ActionSize], dtype=np.int64)
_JUMP_K = AMOUNT_VALUES[ActionType.JUMP_BACK].astype(np.int64)
_MIN_JUMP = int(_JUMP_K.min())


def amount_value(type: ActionType, amount: ActionAmount) -> float:
    """The value an amount means for a type (unit per type, see the table above).

    Raises:
        ValueError: the amount is invalid for the type (e.g. GAIN NEUTRAL).
    """
    value = AMOUNT_VALUES[int(type), int(amount)]
    if np.isnan(value):
        raise ValueError(
            f"amount {ActionAmount(amount).name} is invalid for {ActionType(type).name}; "
            f"valid: {[a.name for a in valid_amounts(type)]}"
        )
    return float(value)


def valid_amounts(type: ActionType) -> tuple[ActionAmount, ...]:
    """The amounts a type accepts (NEUTRAL only for types whose amount means nothing)."""
    return tuple(ActionAmount(int(a)) for a in np.flatnonzero(AMOUNT_VALID[int(type)]))


def is_structural(type: ActionType) -> bool:
    """True for types that rearrange raw audio without changing its samples."""
    return ActionType(type) in STRUCTURAL_TYPES


# ---------------------------------------------------------------------------------------------
# The state machine.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedSegment:
    """One piece of output, symbolically: a beat range, the effect on it, how often it plays.

    ``start_beat``/``end_beat`` are raw beats, except for REPEAT_PREV (``from_output``) where
    they index beats of the output written so far.
    """

    type: ActionType
    size: ActionSize
    amount: ActionAmount
    start_beat: int
    """[beats] first beat of the audio (inclusive)."""
    end_beat: int
    """[beats] end of the audio (exclusive)."""
    repeats: int = 1
    """[count] how many times the audio plays back to back (LOOP)."""
    from_output: bool = False
    """True if the beats index the output so far (REPEAT_PREV), not the raw track."""
    consumed_start: int = -1
    """[beats] first raw beat the cursor consumed for this segment (-1: none, JUMP_BACK)."""
    consumed_end: int = -1
    """[beats] end of the raw beats the cursor consumed (exclusive; -1: none)."""

    @property
    def n_beats(self) -> int:
        """[beats] length of the output this segment adds (all repeats)."""
        return (self.end_beat - self.start_beat) * self.repeats


@dataclass(frozen=True, slots=True)
class EditState:
    """Where an edit stands: the cursor on the raw grid and what the output holds so far."""

    n_beats: int
    """[beats] length of the raw beat grid."""
    downbeat_phase: int = 0
    """[beats] index in 0..3 of the first downbeat; bars start at beats phase + 4 m."""
    cursor: int = 0
    """[beats] next raw beat to decide."""
    n_output_beats: int = 0
    """[beats] beats in the output so far (deferred REORDERs not counted)."""
    last_was_jump: bool = False
    """True if the previous action was JUMP_BACK (a second in a row is masked)."""
    deferred: tuple[PlannedSegment, ...] = ()
    """REORDER segments, played after everything else by :func:`finish`."""
    n_steps: int = 0
    """[actions] how many actions were taken."""

    @property
    def done(self) -> bool:
        """True once every raw beat is decided."""
        return self.cursor >= self.n_beats

    @property
    def beats_left(self) -> int:
        """[beats] raw beats not yet decided."""
        return self.n_beats - self.cursor

    def copy(self) -> EditState:
        """The state is immutable; returns itself (kept for callers that expect ``copy``)."""
        return self


def initial_state(n_beats: int, *, downbeat_phase: int = 0) -> EditState:
    """The state before the first action of a track with ``n_beats`` beats."""
    if n_beats < 1:
        raise ValueError(f"a track needs at least 1 beat, got n_beats={n_beats}")
    return EditState(n_beats=int(n_beats), downbeat_phase=int(downbeat_phase) % 4)


def action_masks(state: EditState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which actions are valid in ``state``. Every (type, size, amount) with all three set is.

    Returns:
        type_mask: [shape=(N_TYPES,)] bool.
        size_mask: [shape=(N_TYPES, N_SIZES)] bool, valid sizes per type.
        amount_mask: [shape=(N_TYPES, N_AMOUNTS)] bool, valid amounts per type.
        All False once ``state.done``.
    """
    left = state.n_beats - state.cursor
    fits = left >= _SIZES
    size_mask = np.broadcast_to(fits, (N_TYPES, N_SIZES)).copy()
    size_mask[ActionType.SKIP] = left > 0  # clamped at the track end: its documented meaning
    size_mask[ActionType.JUMP_BACK] = left > 0  # the replayed range is clamped at the track end
    size_mask[ActionType.SWAP_NEXT] = left >= 2 * _SIZES
    size_mask[ActionType.REPEAT_PREV] = fits & (state.n_output_beats >= _SIZES)
    amount_mask = AMOUNT_VALID.copy()
    amount_mask[ActionType.JUMP_BACK] = state.cursor >= _JUMP_K
    type_mask = size_mask.any(axis=1) & amount_mask.any(axis=1)
    if state.last_was_jump:
        type_mask[ActionType.JUMP_BACK] = False
    return type_mask, size_mask, amount_mask


_AMOUNT_VALID_LIST: list[list[bool]] = AMOUNT_VALID.tolist()
_SIZE_LIST: list[int] = _SIZES.tolist()
_JUMP_K_LIST: list[int] = _JUMP_K.tolist()


def is_valid(state: EditState, type: int, size: int, amount: int) -> bool:
    """True if ``(type, size, amount)`` is allowed in ``state`` (the scalar form of the masks)."""
    left, n = state.n_beats - state.cursor, _SIZE_LIST[size]
    if left <= 0 or not _AMOUNT_VALID_LIST[type][amount]:
        return False
    if type == ActionType.JUMP_BACK:
        return not state.last_was_jump and _JUMP_K_LIST[amount] <= state.cursor
    if type == ActionType.SKIP:
        return True
    if type == ActionType.SWAP_NEXT:
        return 2 * n <= left
    if type == ActionType.REPEAT_PREV:
        return n <= left and n <= state.n_output_beats
    return n <= left


def skip_end(state: EditState, size: ActionSize) -> int:
    """[beats] where SKIP of ``size`` lands: the next boundary of that size after the cursor."""
    n = SIZE_BEATS[ActionSize(size)]
    c = state.cursor
    return min(c + n - (c - state.downbeat_phase) % n, state.n_beats)


def _effect_of(
    state: EditState, t: ActionType, s: ActionSize, a: ActionAmount
) -> tuple[int, list[PlannedSegment], tuple[PlannedSegment, ...]]:
    """(new cursor, segments output now, deferred segments) of a valid action."""
    n, c = SIZE_BEATS[s], state.cursor
    new_cursor, segs, deferred = c + n, [], state.deferred
    if t == ActionType.CUT:
        pass  # nothing plays; the cursor moves on
    elif t == ActionType.SKIP:
        new_cursor = skip_end(state, s)
    elif t == ActionType.REORDER:
        deferred = (*deferred, PlannedSegment(t, s, a, c, c + n, 1, False, c, c + n))
    elif t == ActionType.JUMP_BACK:
        start = c - int(_JUMP_K[a])
        segs = [PlannedSegment(t, s, a, start, min(start + n, state.n_beats))]
        new_cursor = c
    elif t == ActionType.SWAP_NEXT:
        segs = [
            PlannedSegment(t, s, a, c + n, c + 2 * n, 1, False, c + n, c + 2 * n),
            PlannedSegment(t, s, a, c, c + n, 1, False, c, c + n),
        ]
        new_cursor = c + 2 * n
    elif t == ActionType.REPEAT_PREV:
        m = state.n_output_beats
        segs = [PlannedSegment(t, s, a, m - n, m, 1, True, c, c + n)]
    else:
        repeats = int(AMOUNT_VALUES[t, a]) if t == ActionType.LOOP else 1
        segs = [PlannedSegment(t, s, a, c, c + n, repeats, False, c, c + n)]
    return new_cursor, segs, deferred


def step(
    state: EditState, type: int, size: int, amount: int
) -> tuple[EditState, list[PlannedSegment]]:
    """The symbolic effect of one action: the next state and the segments it adds to the output.

    The caller must pass a valid action (see :func:`action_masks`); an invalid one raises.

    Raises:
        ValueError: the action is not valid in ``state``.
    """
    t, s, a = ActionType(type), ActionSize(size), ActionAmount(amount)
    if not is_valid(state, t, s, a):
        raise ValueError(
            f"invalid action {t.name} {s.name} {a.name} at beat {state.cursor} "
            f"of {state.n_beats} (see action_masks)"
        )
    new_cursor, segs, deferred = _effect_of(state, t, s, a)
    new_state = EditState(
        n_beats=state.n_beats,
        downbeat_phase=state.downbeat_phase,
        cursor=new_cursor,
        n_output_beats=state.n_output_beats + sum(p.n_beats for p in segs),
        last_was_jump=t == ActionType.JUMP_BACK,
        deferred=deferred,
        n_steps=state.n_steps + 1,
    )
    return new_state, segs


def keep_until(state: EditState, beat: int) -> tuple[EditState, list[PlannedSegment]]:
    """Keep raw beats ``[cursor, beat)`` unchanged (how decision lists fill undecided gaps)."""
    if not state.cursor <= beat <= state.n_beats:
        raise ValueError(f"cannot keep up to beat {beat} from cursor {state.cursor}")
    if beat == state.cursor:
        return state, []
    c = state.cursor
    keep, beat_size, neutral = ActionType.KEEP, ActionSize.BEAT, ActionAmount.NEUTRAL
    seg = PlannedSegment(keep, beat_size, neutral, c, beat, 1, False, c, beat)
    new_state = EditState(
        n_beats=state.n_beats,
        downbeat_phase=state.downbeat_phase,
        cursor=beat,
        n_output_beats=state.n_output_beats + (beat - c),
        last_was_jump=False,
        deferred=state.deferred,
        n_steps=state.n_steps,
    )
    return new_state, [seg]


def finish(state: EditState) -> list[PlannedSegment]:
    """Segments played at the end of the episode: the deferred REORDERs, in order."""
    return list(state.deferred)
