"""Editor styles: consistent, content-dependent editing policies that write decision lists.

A style looks at the arrangement — section labels and the measured loudness of every bar — and
plans each 4-bar phrase as a few (type, size, amount) actions. :func:`plan_edit` then walks the
plan through the edit state machine (:mod:`editorbot.editing.actions`), so every decision list
it returns is valid under the masks; an action the masks forbid where it lands is replaced by
KEEPs over the same beats. Emission is canonical (what the labels infer from audio): a SKIP that
removes exactly one size's beats is written as the CUT of that size.

Styles (over the three, all 20 action types occur, KEEP the most common):

- ``radio``: a radio edit. Trims and fades in the intro, drops quiet repeated verse phrases and
  quiet bridges (CUT, SKIP), brings up a quiet first verse (GAIN), fades out the outro's first
  bar and skips its rest.
- ``dj``: a DJ extended edit. Loops the first intro bar and the loudest chorus bar (LOOP), jumps
  back to replay a chorus (JUMP_BACK), stutters into choruses (REPEAT_PREV), swaps the bass in
  (EQ_LOW) and filters breakdowns and outros (EQ_HIGH), fades in and out.
- ``remix``: moves the intro to the end (REORDER), swaps bars (SWAP_NEXT), reverses or speeds up
  the bar before a chorus (REVERSE, SPEED_UP), drives the loudest verse bar (DISTORTION), shifts
  the final chorus up a key (PITCH_UP), slows and lowers the bridge (SPEED_DOWN, PITCH_DOWN),
  and washes the outro in reverb (REVERB).

Editing conventions follow common practice for radio edits and DJ/extended mixes (e.g. Brewster
& Broughton, "How to DJ Right", 2002; https://www.djhistory.com/books/how-to-dj-right).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from editorbot.datasets.song import BEATS_PER_BAR, BEATS_PER_PHRASE, Section
from editorbot.editing.actions import (
    SIZE_BEATS,
    ActionAmount,
    ActionSize,
    ActionType,
    EditState,
    initial_state,
    is_valid,
    skip_end,
    step,
)
from editorbot.errors import ParameterError

logger = logging.getLogger(__name__)

T, S, A = ActionType, ActionSize, ActionAmount
Action = tuple[ActionType, ActionSize, ActionAmount]


@dataclass(frozen=True, eq=False)
class EditContext:
    """What a style may look at: the form and the loudness of every bar."""

    sections: tuple[Section, ...]
    """the form, in order."""
    bar_db: np.ndarray
    """[shape=(n_bars,)] [dB] RMS level of every bar."""

    @property
    def n_beats(self) -> int:
        return sum(s.n_beats for s in self.sections)


@dataclass(frozen=True)
class Phrase:
    """One 4-bar phrase as a style sees it."""

    label: str
    """section label."""
    start_beat: int
    """[beats] first beat."""
    k: int
    """index of the phrase in its section."""
    n: int
    """phrases in its section."""
    next_label: str | None
    """label of the following phrase (None at the end)."""
    last_chorus: bool
    """the phrase belongs to the song's last chorus."""
    bar_db: np.ndarray
    """[shape=(4,)] [dB] level of its bars."""
    song_db: float
    """[dB] median bar level of the whole song."""
    song_max_db: float
    """[dB] level of the song's loudest phrase."""

    @property
    def db(self) -> float:
        """[dB] mean level of the phrase's bars."""
        return float(self.bar_db.mean())

    @property
    def loudest_bar(self) -> int:
        return int(np.argmax(self.bar_db))


def _a(type: ActionType, size: ActionSize, amount: ActionAmount = A.NEUTRAL) -> Action:
    return (type, size, amount)


def _keep_bars(n: int) -> list[Action]:
    return [_a(T.KEEP, S.BAR)] * n


def _bars_around(bar: int, middle: list[Action]) -> list[Action]:
    """Keep the phrase's bars before ``bar``, do ``middle`` (one bar's worth), keep the rest."""
    return _keep_bars(bar) + middle + _keep_bars(3 - bar)


def _radio(p: Phrase, rng: np.random.Generator) -> list[Action]:
    if p.label == "intro":
        if p.k < p.n - 1:
            return [_a(T.CUT, S.PHRASE)]  # only the last intro phrase survives
        fade = A(int(rng.choice([A.POS_SMALL, A.POS_LARGE])))
        return [_a(T.CUT, S.TWO_BARS), _a(T.FADE_IN, S.BAR, fade), _a(T.KEEP, S.BAR)]
    if p.label == "outro":
        if p.k > 0:
            return [_a(T.CUT, S.PHRASE)]
        # A quick fade over the outro's first bar, then the rest skipped (12 beats: one SKIP).
        return [_a(T.FADE_OUT, S.BAR, A.POS_LARGE), _a(T.SKIP, S.PHRASE)]
    quiet = p.db < p.song_db - 1.0  # a phrase clearly below the song's typical level
    if p.label == "bridge" and quiet:
        return [_a(T.CUT, S.PHRASE)]
    if p.label == "verse" and p.k > 0 and quiet:
        return (
            [_a(T.KEEP, S.BAR), _a(T.SKIP, S.PHRASE)]  # 12 beats: one SKIP, not two CUTs
            if rng.random() < 0.5
            else [_a(T.CUT, S.PHRASE)]
        )
    if p.label == "verse" and p.k == 0 and p.db < p.song_max_db - 2.0:
        return [_a(T.GAIN, S.PHRASE, A.POS_SMALL)]  # +3 dB: even out the level, as radio does
    return [_a(T.KEEP, S.PHRASE)]


def _dj(p: Phrase, rng: np.random.Generator) -> list[Action]:
    if p.label == "intro" and p.k == 0:
        loop = A(int(rng.choice([A.NEUTRAL, A.POS_SMALL, A.POS_LARGE])))
        return [_a(T.FADE_IN, S.BAR, A.POS_LARGE), _a(T.LOOP, S.BAR, loop), _a(T.KEEP, S.TWO_BARS)]
    if p.label == "chorus":
        plan = [_a(T.KEEP, S.PHRASE)]
        if p.k == p.n - 1:  # the loudest bar of the section's last phrase, twice
            plan = _bars_around(p.loudest_bar, [_a(T.LOOP, S.BAR)])
            if rng.random() < 0.7:
                plan.append(_a(T.JUMP_BACK, S.PHRASE, A.NEUTRAL))  # replay the chorus phrase
        return plan
    if p.label == "bridge":
        return [_a(T.EQ_HIGH, S.TWO_BARS, A.NEG_LARGE), _a(T.EQ_HIGH, S.TWO_BARS, A.NEG_SMALL)]
    if p.label == "outro":
        if p.k < p.n - 1:
            return [_a(T.LOOP, S.TWO_BARS), _a(T.KEEP, S.TWO_BARS)]
        return [_a(T.EQ_HIGH, S.TWO_BARS, A.NEG_SMALL), _a(T.FADE_OUT, S.TWO_BARS, A.POS_LARGE)]
    # Bass swap on the verse's first bar (the lows come in a bar late); a stutter into a chorus.
    first = _a(T.EQ_LOW, S.BAR, A.NEG_LARGE) if p.label == "verse" and p.k == 0 else None
    last: list[Action] = []
    if p.next_label == "chorus" and p.k == p.n - 1:
        stutter = [_a(T.KEEP, S.BEAT)] * 2 + [_a(T.REPEAT_PREV, S.BEAT)] * 2
        last = stutter if rng.random() < 0.5 else [_a(T.REPEAT_PREV, S.BAR)]
    return [first or _a(T.KEEP, S.BAR), *_keep_bars(2), *(last or _keep_bars(1))]


def _remix(p: Phrase, rng: np.random.Generator) -> list[Action]:
    if p.label == "intro":
        return [_a(T.REORDER, S.PHRASE)] if p.k == 0 else [_a(T.KEEP, S.PHRASE)]
    if p.label == "outro":
        return [_a(T.KEEP, S.TWO_BARS), _a(T.REVERB, S.TWO_BARS, A.POS_LARGE)]
    if p.label == "bridge":
        down = A(int(rng.choice([A.NEG_SMALL, A.NEUTRAL, A.POS_SMALL])))
        return [
            _a(T.PITCH_DOWN, S.TWO_BARS, down),
            _a(T.SPEED_DOWN, S.BAR, A.NEUTRAL),
            _a(T.REVERB, S.BAR),
        ]
    if p.label == "chorus" and p.last_chorus:
        return [_a(T.PITCH_UP, S.PHRASE, A.NEG_SMALL)]  # +2 semitones: the final key change
    if p.label == "verse":
        # Bar 1 hits harder when it is loud already; bars 2-3 swap; bar 4 rises into a chorus.
        first = _a(T.KEEP, S.BAR)
        if p.k == 0:
            loud = p.bar_db[0] >= p.song_db - 3.0
            first = _a(
                T.DISTORTION if loud else T.EQ_LOW, S.BAR, A.NEG_SMALL if loud else A.POS_SMALL
            )
        middle = [_a(T.SWAP_NEXT, S.BAR)] if rng.random() < 0.5 else _keep_bars(2)
        last = _keep_bars(1)
        if p.next_label == "chorus" and p.k == p.n - 1:
            last = [_a(T.REVERSE if rng.random() < 0.6 else T.SPEED_UP, S.BAR, A.NEUTRAL)]
        return [first, *middle, *last]
    if rng.random() < 0.3:
        return [_a(T.EQ_LOW, S.TWO_BARS, A.POS_SMALL), _a(T.KEEP, S.TWO_BARS)]
    return [_a(T.KEEP, S.PHRASE)]


STYLES: dict[str, Callable[[Phrase, np.random.Generator], list[Action]]] = {
    "radio": _radio,
    "dj": _dj,
    "remix": _remix,
}
"""Every style, by name; ``plan_edit`` and ``editorbot demo-data --style`` take these names."""


def plan_edit(style: str, ctx: EditContext, rng: np.random.Generator) -> np.ndarray:
    """A style's whole edit of one track, valid under the masks.

    Args:
        style: a name in ``STYLES``.
        ctx: the form and bar levels of the track.
        rng: the only source of randomness.

    Returns:
        [shape=(n, 3)] int64 (type, size, amount) per action, in cursor order, covering every
        beat (beats a style leaves alone get explicit KEEPs).

    Raises:
        ParameterError: unknown style.
    """
    if style not in STYLES:
        raise ParameterError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    policy = STYLES[style]
    state = initial_state(ctx.n_beats)
    actions: list[Action] = []
    for phrase in _phrases(ctx):
        while state.cursor < phrase.start_beat:  # a previous plan fell short: keep the gap
            state = _take(state, _a(T.KEEP, S.BEAT), actions)
        if state.cursor > phrase.start_beat:  # a SKIP or SWAP ran past this phrase
            continue
        for action in policy(phrase, rng):
            if state.done:
                break
            state = _apply(state, action, actions)
    while not state.done:
        state = _take(state, _a(T.KEEP, _largest_fit(state.beats_left)), actions)
    return _merge_keeps(actions)


def _phrases(ctx: EditContext) -> list[Phrase]:
    song_db = float(np.median(ctx.bar_db))
    n_phrases = len(ctx.bar_db) // 4
    song_max_db = float(ctx.bar_db[: 4 * n_phrases].reshape(n_phrases, 4).mean(axis=1).max())
    choruses = [i for i, s in enumerate(ctx.sections) if s.label == "chorus"]
    out = []
    for i, sec in enumerate(ctx.sections):
        n = sec.n_beats // BEATS_PER_PHRASE
        for k in range(n):
            start = sec.start_beat + k * BEATS_PER_PHRASE
            bar0 = start // BEATS_PER_BAR
            nxt = (
                sec.label
                if k < n - 1
                else (ctx.sections[i + 1].label if i + 1 < len(ctx.sections) else None)
            )
            out.append(
                Phrase(
                    label=sec.label,
                    start_beat=start,
                    k=k,
                    n=n,
                    next_label=nxt,
                    last_chorus=bool(choruses) and i == choruses[-1],
                    bar_db=ctx.bar_db[bar0 : bar0 + 4],
                    song_db=song_db,
                    song_max_db=song_max_db,
                )
            )
    return out


def _take(state: EditState, action: Action, actions: list[Action]) -> EditState:
    actions.append(action)
    return step(state, *action)[0]


def _apply(state: EditState, action: Action, actions: list[Action]) -> EditState:
    """Take ``action`` if the masks allow it here, else KEEP the beats it would have consumed.

    Emission is canonical (the rule the labels follow, see ``editorbot.editing.align_parse``):
    a SKIP that removes exactly one size's beats renders like a CUT of that size, so it is
    written as that CUT.
    """
    if action[0] == T.SKIP and is_valid(state, *action):
        action = _canonical_skip(state, action)
    if is_valid(state, *action):
        return _take(state, action, actions)
    type, size, _ = action
    n = SIZE_BEATS[size]
    consumed = {T.JUMP_BACK: 0, T.SWAP_NEXT: 2 * n}.get(type, n)
    if type == T.SKIP:
        consumed = skip_end(state, size) - state.cursor
    end = min(state.cursor + consumed, state.n_beats)
    logger.debug("%s %s not valid at beat %d; keeping instead", type.name, size.name, state.cursor)
    while state.cursor < end:
        state = _take(state, _a(T.KEEP, _largest_fit(end - state.cursor)), actions)
    return state


def _canonical_skip(state: EditState, action: Action) -> Action:
    """A SKIP as the CUT of the same beats where one CUT removes them, else unchanged."""
    n = skip_end(state, action[1]) - state.cursor
    same = [s for s in ActionSize if SIZE_BEATS[s] == n]
    return _a(T.CUT, same[0]) if same else action


def _largest_fit(n_beats: int) -> ActionSize:
    return max((s for s in ActionSize if SIZE_BEATS[s] <= n_beats), key=lambda s: SIZE_BEATS[s])


def _merge_keeps(actions: list[Action]) -> np.ndarray:
    """Join runs of KEEPs into the fewest KEEPs of at most a phrase (an editor's unit)."""
    out: list[Action] = []
    run = 0
    for action in [*actions, _a(T.CUT, S.BEAT)]:  # a sentinel flushes the last run
        if action[0] == T.KEEP:
            run += SIZE_BEATS[action[1]]
            continue
        while run:
            size = _largest_fit(min(run, SIZE_BEATS[S.PHRASE]))
            out.append(_a(T.KEEP, size))
            run -= SIZE_BEATS[size]
        out.append(action)
    return np.array(out[:-1], dtype=np.int64).reshape(-1, 3)
