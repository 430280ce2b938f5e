"""From the raw beats the edit plays to decisions in the edit language.

The alignment says, for every beat of the edit, which raw beat it is and which effect it carries.
This module looks for the cheapest decision sequence whose output, run through the one state
machine (:func:`editorbot.editing.actions.step`), reproduces that beat sequence: a beam search
in output order. Output positions are visited in order; at each, the cheapest way to every
state (cursor, last action was a jump, beats deferred) is kept and only the best few states
(``_BEAM_WIDTH``, within ``_BEAM_MARGIN`` of the best) are expanded; moves that play nothing
(CUT, SKIP) lead to states at the same position, taken in cursor order. Each decision costs
1, each beat it gets wrong costs ``mismatch_cost``, so a few misaligned beats cost a few
mismatches instead of breaking the parse. This is where KEEP, CUT, LOOP, REORDER, SKIP,
SWAP_NEXT, JUMP_BACK and REPEAT_PREV are told apart: by what each does to the cursor and the
output.

Canonical form. Some decision lists render the same audio (a SKIP to a bar line and a CUT of the
same beats; KEEP + REPEAT_PREV and LOOP + CUT). The label is the cheapest list under ``_COST``
(fewest decisions, KEEP nearly free, jumps and reorders double), ties to the lower type number
(CUT before SKIP). The demo generator emits this form (``editorbot.datasets.styles``) and the
evaluation scores a one-size SKIP as its CUT (``editorbot.evaluation.label_metrics``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from editorbot.editing.actions import (
    SIZE_BEATS,
    ActionAmount,
    ActionSize,
    ActionType,
    EditState,
    PlannedSegment,
    amount_value,
    initial_state,
    is_valid,
    skip_end,
    step,
    valid_amounts,
)

logger = logging.getLogger(__name__)

_T = ActionType
_PLAYS_CURSOR = (_T.KEEP, _T.LOOP)
"""Types whose output starts at the cursor (effect types behave like KEEP here)."""


@dataclass(frozen=True)
class OutBeat:
    """One beat of the edit, as the alignment sees it."""

    beat: int
    """[beat index] the raw beat played (-1: unexplained)."""
    effect: ActionType
    """[type] the effect on it (KEEP for none)."""
    alts: tuple[int, ...] = ()
    """[beat indices] other raw beats whose samples it matches as exactly (repeated bars)."""
    edit_start: int = -1
    """[edit samples] where the alignment starts it (-1: unknown)."""
    alt_effects: tuple[ActionType, ...] = ()
    """[types] other effects it may carry (a changed beat no level effect explains, near a
    stretched one), at a small price."""

    def carries(self, effect: ActionType) -> bool:
        """True if ``effect`` explains this beat (its own, or an alternative)."""
        return effect == self.effect or effect in self.alt_effects

    def plays(self, beat: int) -> bool:
        """True if raw ``beat`` explains this output beat."""
        return beat == self.beat or beat in self.alts


@dataclass(frozen=True)
class Parsed:
    """One decision with the output beats it explains."""

    type: ActionType
    size: ActionSize
    amount: ActionAmount
    beat: int
    """[beat index] the cursor when it is taken."""
    out_start: int
    """[output beats] first output beat it produced (for REORDER: its place in the tail)."""
    out_end: int
    """[output beats] one past its last (out_start for decisions that play nothing here)."""
    mismatches: int
    """[beats] output beats it produced that the alignment disagrees with."""


def parse_output(
    out: list[OutBeat],
    *,
    n_beats: int,
    downbeat_phase: int = 0,
    mismatch_cost: float = 3.0,
) -> list[Parsed]:
    """The cheapest decision list that reproduces ``out``.

    Args:
        out: the edit's beats in order.
        n_beats: [beats] the raw grid's length.
        downbeat_phase: [beats] first downbeat (SKIP boundaries).
        mismatch_cost: [decisions] cost of one output beat the decisions get wrong.

    Returns:
        The decisions in cursor order (REORDERs included where they are taken).
    """
    state = initial_state(n_beats, downbeat_phase=downbeat_phase)
    results = [
        _Search(out, split, n_beats, mismatch_cost).run(state) for split in _tail_splits(out)
    ]
    return min(results, key=lambda r: r[0])[1]


def _tail_splits(out: list[OutBeat]) -> list[int]:
    """Where the deferred REORDER tail may start (``len(out)``: no tail), longest tail last.

    A tail is a suffix of runs whose raw beats ascend across runs, whose first beat jumps back
    from the beat before it, and none of whose beats the part before it plays; the parse tries
    each and keeps the cheapest.
    """
    runs = _runs(out)
    splits = [len(out)]
    for k in range(len(runs) - 1, 0, -1):
        start = runs[k][0]
        beats = [b.beat for b in out[start:]]
        if not all(b > a for a, b in itertools.pairwise(beats)):
            break
        # A tail of several deferred runs ascends across them and only its first run jumps
        # back; its beats are consumed by the REORDERs, so the main part never plays them.
        main = {b.beat for b in out[:start]}
        if beats[0] < out[start - 1].beat and main.isdisjoint(beats):
            splits.append(start)
    return splits


def _runs(out: list[OutBeat]) -> list[tuple[int, int]]:
    """[(start, end)] output index ranges where the raw beat advances by one."""
    runs, start = [], 0
    for i in range(1, len(out) + 1):
        if i == len(out) or out[i].beat != out[i - 1].beat + 1:
            runs.append((start, i))
            start = i
    return runs


_Edge = tuple["Parsed | None", EditState, int, float]
"""(decision or None for a dropped beat, next state, next output position, cost)."""


class _Search:
    """Beam search over output positions, keeping the cheapest way to each state (cursor, last
    was a jump, beats deferred) at each position."""

    def __init__(self, out: list[OutBeat], main_end: int, n_beats: int, mismatch: float) -> None:
        self.out, self.main_end = out, main_end
        self.n_beats, self.mismatch = n_beats, mismatch
        self.tail_pos = {b.beat: i for i, b in enumerate(out) if i >= main_end}
        self.tail = set(self.tail_pos)

    def run(self, start: EditState) -> tuple[float, list[Parsed]]:
        """(cost, decisions) of the cheapest parse with the tail starting at ``main_end``.

        A beam search in output order: states at output position ``i`` are expanded in cursor
        order (moves that play nothing only advance the cursor), and only states within
        ``_BEAM_MARGIN`` of the best at ``i`` (at most ``_BEAM_WIDTH``) survive.
        """
        n_pos = self.main_end + 4 * max(SIZE_BEATS.values()) + 1
        buckets: list[dict[_Key, _Entry]] = [{} for _ in range(n_pos)]
        buckets[0][_key(start)] = _Entry(0.0, start, None, None)
        final: _Entry | None = None
        for i in range(n_pos):
            bucket = _prune(buckets[i])
            heap = sorted(bucket)
            while heap:
                key = heapq.heappop(heap)
                entry = bucket[key]
                if entry.state.done and i >= self.main_end:
                    # the tail's beats no REORDER deferred are beats the parse gets wrong
                    deferred = {b for seg in entry.state.deferred
                                for b in range(seg.start_beat, seg.end_beat)}  # fmt: skip
                    missed = sum(1 for b in self.tail if b not in deferred)
                    done = _Entry(entry.cost + self.mismatch * missed, entry.state, entry.prev,
                                  entry.parsed)  # fmt: skip
                    if final is None or done.cost < final.cost:
                        final = done
                    continue
                for parsed, nxt, j, c in self._edges(entry.state, i):
                    nkey = _key(nxt)
                    old = buckets[j].get(nkey)
                    if old is None or entry.cost + c < old.cost:
                        buckets[j][nkey] = _Entry(entry.cost + c, nxt, entry, parsed)
                        if j == i and old is None:
                            heapq.heappush(heap, nkey)
        assert final is not None, "CUT and KEEP are always valid, so some parse reaches the end"
        return final.cost, _walk(final)

    def _edges(self, state: EditState, i: int) -> Iterator[_Edge]:
        """Moves from (state, i): exact ones if any exist, else the cheap ways out."""
        targets = [self.out[i].beat, *self.out[i].alts] if i < self.main_end else [None]
        exact: list[_Edge] = []
        rough: list[_Edge] = []
        tried = set()
        for t, s, a in (c for target in targets for c in self._candidates(state, target)):
            if (t, s, a) in tried or not is_valid(state, t, s, a):
                continue
            tried.add((t, s, a))
            nxt, segs = step(state, t, s, a)
            produced = [(b, e) for p in segs for _ in range(p.repeats) for b, e in self._play(p)]
            m, effect, soft = self._compare(produced, i)
            if t == _T.REORDER:
                m += self._tail_effects(state.cursor, SIZE_BEATS[ActionSize(s)])
            out_start = self.tail_pos.get(state.cursor, i) if t == _T.REORDER else i
            parsed = Parsed(
                effect if t == _T.KEEP else t, s, a, state.cursor, out_start, i + len(produced), m
            )
            # Ties go to the simpler reading: a KEEP over a LOOP, a CUT over a SKIP.
            cost = _COST.get(t, 1.0) + self.mismatch * m + soft
            cost += 1e-3 * int(t) + 1e-4 * int(s)
            (rough if m else exact).append((parsed, nxt, i + len(produced), cost))
        if exact:
            yield from exact
            return
        yield from rough
        if i < self.main_end:  # an output beat nothing explains: drop it, at a price
            yield None, state, i + 1, self.mismatch

    def _candidates(
        self, state: EditState, target: int | None
    ) -> Iterator[tuple[ActionType, ActionSize, ActionAmount]]:
        """Actions worth trying: those whose first output beat is ``target`` (or that move the
        cursor towards it without passing it); None = past the main part, only cursor moves."""
        c, out, i = state.cursor, self.out, state.n_output_beats
        neutral = ActionAmount.NEUTRAL
        if state.done:
            return
        for s in ActionSize:
            n = SIZE_BEATS[s]
            if c in self.tail:
                if self._reorderable(c, n):
                    yield _T.REORDER, s, neutral
            elif target is None or target > c:
                if target is None or c + n <= target:
                    yield _T.CUT, s, neutral
                if target is None or skip_end(state, s) <= target:
                    yield _T.SKIP, s, neutral
            if target is None:
                continue
            if target == c:
                yield _T.KEEP, s, neutral
                for a in valid_amounts(_T.LOOP):
                    yield _T.LOOP, s, a
            if target == c + n:
                yield _T.SWAP_NEXT, s, neutral
            if n <= i and out[i - n].plays(target):
                yield _T.REPEAT_PREV, s, neutral
            if target < c:
                for a in valid_amounts(_T.JUMP_BACK):
                    if c - amount_value(_T.JUMP_BACK, a) == target:
                        yield _T.JUMP_BACK, s, a
        if target is not None and target != c:
            yield _T.KEEP, ActionSize.BEAT, neutral  # the fallback: a mismatched beat

    def _reorderable(self, c: int, n: int) -> bool:
        """True if raw beats c .. c+n-1 play back to back in the tail."""
        pos = self.tail_pos
        return all(b in pos and pos[b] == pos[c] + b - c for b in range(c, c + n))

    def _play(self, p: PlannedSegment) -> list[tuple[int, ActionType | None]]:
        """(raw beat, effect) a segment plays; None = the effect is free to choose (KEEP)."""
        if p.from_output:
            out = self.out
            return [
                (out[k].beat, out[k].effect) if 0 <= k < len(out) else (-1, _T.KEEP)
                for k in range(p.start_beat, p.end_beat)
            ]
        free = p.type == _T.KEEP
        return [(b, None if free else _T.KEEP) for b in range(p.start_beat, p.end_beat)]

    def _compare(
        self, produced: list[tuple[int, ActionType | None]], i: int
    ) -> tuple[int, ActionType, float]:
        """Output beats produced wrongly, the effect a KEEP carries, and a soft cost.

        The effect is the one its beats (their own effects and alternatives) fit at the least
        cost: ``mismatch`` per beat it does not explain, ``_ABSORB_COST`` per unchanged beat
        inside a level segment (the loud end of a fade), ``_ALT_COST`` per beat explained by
        an alternative; ties to the lower type.
        """
        window = self.out[i : min(i + len(produced), self.main_end)]
        m = len(produced) - len(window)
        m += sum(1 for (b, _), o in zip(produced, window, strict=False) if not o.plays(b))
        pairs = list(zip(produced, window, strict=False))
        free = [o for (_, e), o in pairs if e is None]
        options = {o.effect for o in free} | {a for o in free for a in o.alt_effects} or {_T.KEEP}
        fits = {t: self._fit(pairs, t) for t in options}
        effect = min(options, key=lambda t: (self.mismatch * fits[t][0] + fits[t][1], int(t)))
        return m + fits[effect][0], effect, fits[effect][1]

    @staticmethod
    def _fit(
        pairs: list[tuple[tuple[int, ActionType | None], OutBeat]], effect: ActionType
    ) -> tuple[int, float]:
        """(beats ``effect`` on the free beats leaves unexplained, soft cost) of one reading."""
        m, soft = 0, 0.0
        for (_, e), o in pairs:
            want = effect if e is None else e
            if e is None and want == _T.GAIN and o.effect == _T.KEEP:
                soft += _ABSORB_COST
            elif want != o.effect and o.carries(want):
                soft += _ALT_COST
            else:
                m += int(want != o.effect)
        return m, soft

    def _tail_effects(self, c: int, n: int) -> int:
        """Changed beats among the tail beats a REORDER at ``c`` would defer (it plays as is)."""
        out, pos = self.out, self.tail_pos
        return sum(1 for b in range(c, c + n) if b in pos and out[pos[b]].effect != _T.KEEP)


_ALT_COST = 0.1
"""[decisions] a beat read under its alternative effect (its own reading is preferred)."""
_ABSORB_COST = 0.3
"""[decisions] an unchanged beat inside a GAIN-like segment (a fade's loud end is near 0 dB)."""
_COST = {_T.KEEP: 0.5, _T.SKIP: 1.75, _T.JUMP_BACK: 2.0, _T.REORDER: 2.0, _T.SWAP_NEXT: 2.0}
"""[decisions] what a decision costs (others 1): a KEEP is nearly free (undecided beats are
kept anyway); jumps and reorders count double, so of two readings of the same beats the plainer
one wins (a LOOP and two KEEPs over a KEEP, a JUMP_BACK and a CUT). REPEAT_PREV counts one, like
any decision: a repeat followed by a cut of as many beats is one REPEAT_PREV, not a LOOP and a
CUT (the canonical rule: fewest decisions). A SKIP counts 1.75: where it lands depends on the
downbeat estimate, so a reading as short without it is preferred (a stutter is KEEP + KEEP +
REPEAT_PREV × 2 = 3.5, not KEEP + LOOP × 3 + SKIP to the bar line = 3.75), while a SKIP still
beats the two CUTs it replaces (1.75 < 2)."""
_BEAM_MARGIN = 8.0
"""[cost] states this much worse than the best at the same output position are dropped."""
_BEAM_WIDTH = 16
"""[states] most states kept per output position."""


@dataclass(frozen=True)
class _Entry:
    """A search state with its cost and how it was reached."""

    cost: float
    state: EditState
    prev: _Entry | None
    parsed: Parsed | None


_Key = tuple[int, bool, tuple[int, ...]]
"""A search state's identity: cursor, last action a jump, the raw beats REORDERs deferred (two
states that differ only there finish differently: one has the tail's beats still to account
for)."""


def _key(state: EditState) -> _Key:
    return state.cursor, state.last_was_jump, tuple(seg.start_beat for seg in state.deferred)


def _prune(bucket: dict[_Key, _Entry]) -> dict[_Key, _Entry]:
    if not bucket:
        return bucket
    best = min(e.cost for e in bucket.values())
    kept = sorted((e.cost, k) for k, e in bucket.items() if e.cost <= best + _BEAM_MARGIN)[
        :_BEAM_WIDTH
    ]
    keys = {k for _, k in kept}
    for k in [k for k in bucket if k not in keys]:
        del bucket[k]
    return bucket


def _walk(entry: _Entry) -> list[Parsed]:
    parsed: list[Parsed] = []
    e: _Entry | None = entry
    while e is not None:
        if e.parsed is not None:
            parsed.append(e.parsed)
        e = e.prev
    parsed.reverse()
    return parsed
