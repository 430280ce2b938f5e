"""The edit language's action table: 20 types × 5 sizes × 5 amounts (DESIGN.md §3).

This module is the only place the numbers of the edit language appear. The renderer, the
environment, the alignment, the reward and the tests read it.
"""

from __future__ import annotations

from enum import IntEnum


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
