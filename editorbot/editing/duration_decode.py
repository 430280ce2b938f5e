"""Target duration as a constraint: the most likely edit whose rendered length fits a target.

A learner scores every action at every raw beat (the RL policy's three heads, or the supervised
label head); left alone it decodes greedily, in its own style and at its own length. Given a
target, :func:`constrained_actions` finds the decision list of highest summed log-probability
whose output, measured with the renderer's own arithmetic (:func:`editorbot.editing.render.
planned_length`), is within ``tolerance`` samples of the target:

- a dynamic program over (cursor beat, last action was a jump, output length bucket), forward
  along the cursor. Each cell keeps its best-scoring path and that path's exact length in
  samples, so merging two paths in one bucket costs optimality at most, never correctness;
- every move's length is exact: raw beat edges, the vocoder's rounding for SPEED_*, repeats for
  LOOP, the replayed range for JUMP_BACK (the cursor stays; two jumps in a row are masked);
- cells that cannot reach the target any more are pruned: longer than target + tolerance (the
  output only grows), or shorter than target - tolerance minus the most the rest of the track can
  still add (a backward pass over the same moves);
- REPEAT_PREV is left out of the search: its length is that of output beats already written,
  which a cell does not know. A greedy list that uses it is still returned as is when it fits.

The constraint costs nothing when it is free: when the unconstrained (greedy) list is already
within the tolerance, it is returned unchanged.

Shape:
    type_lp: (N, N_TYPES); size_lp: (N, N_TYPES, N_SIZES); amount_lp: (N, N_TYPES, N_SIZES,
    N_AMOUNTS) log-probabilities at each raw beat as the cursor; edges: (N + 1,) int64 samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from editorbot.editing.actions import (
    AMOUNT_VALID,
    AMOUNT_VALUES,
    N_AMOUNTS,
    N_SIZES,
    N_TYPES,
    SIZE_BEATS,
    ActionSize,
    ActionType,
)
from editorbot.editing.render import body_samples
from editorbot.errors import ParameterError

LOG_PROB_FLOOR = -30.0
"""[log-prob] floor of a learner's log-probabilities: an action its mask ruled out where the
scores were taken may be valid at another beat, and stays possible (if very unlikely) there."""
_T = ActionType
_PLAIN = (_T.KEEP, _T.REORDER, _T.FADE_IN, _T.FADE_OUT, _T.GAIN, _T.REVERSE, _T.PITCH_UP,
          _T.PITCH_DOWN, _T.EQ_LOW, _T.EQ_HIGH, _T.DISTORTION, _T.REVERB)  # fmt: skip
"""Types whose output is the segment's own length and whose cursor moves by the size."""
_SIZES = np.array([SIZE_BEATS[s] for s in ActionSize], np.int64)
_NONE = -(2**62)  # [samples] "no path" in the reachable-length tables


@dataclass(frozen=True, eq=False)
class BeatLogProbs:
    """A learner's log-probabilities of every action with the cursor at each raw beat."""

    type_lp: np.ndarray
    """[shape=(N, N_TYPES)] log P(type)."""
    size_lp: np.ndarray
    """[shape=(N, N_TYPES, N_SIZES)] log P(size | type)."""
    amount_lp: np.ndarray
    """[shape=(N, N_TYPES, N_SIZES, N_AMOUNTS)] log P(amount | type, size)."""

    def joint(self) -> np.ndarray:
        """[shape=(N, N_TYPES, N_SIZES, N_AMOUNTS)] log P(type, size, amount), floored."""
        lp = [np.maximum(np.asarray(x, np.float64), LOG_PROB_FLOOR) for x in self]
        return lp[0][:, :, None, None] + lp[1][:, :, :, None] + lp[2]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.type_lp, self.size_lp, self.amount_lp))


def supervised_log_probs(lp: list[np.ndarray]) -> BeatLogProbs:
    """The label head's per-beat (type, size, amount) log-probabilities as joint tables (its
    size and amount do not depend on the type)."""
    type_lp, size_lp, amount_lp = (np.asarray(x, np.float64) for x in lp)
    N, n_types = type_lp.shape
    size = np.broadcast_to(size_lp[:, None, :], (N, n_types, size_lp.shape[1]))
    amount = np.broadcast_to(amount_lp[:, None, None, :], (*size.shape, amount_lp.shape[1]))
    return BeatLogProbs(type_lp, size, amount)


@dataclass(frozen=True, eq=False)
class _Moves:
    """Every move the search may take from each cursor, one slot per distinct length rule.

    Shape: (N, M) each; ``action`` (N, M, 3).
    """

    score: np.ndarray  # best log-prob of the slot's actions at the cursor; -inf = invalid
    action: np.ndarray  # the (type, size, amount) achieving it
    new_cursor: np.ndarray  # [beats]
    delta: np.ndarray  # [samples] output the move adds
    jump: np.ndarray  # (M,) bool: a JUMP_BACK slot (cursor stays, next may not jump)


def constrained_actions(
    lp: BeatLogProbs,
    *,
    edges: np.ndarray,
    downbeat_phase: int,
    target_samples: int,
    tolerance_samples: int,
    per_beat: bool = False,
) -> np.ndarray:
    """The most likely actions under ``lp`` whose output is within the tolerance of the target.

    Args:
        lp: the learner's per-beat log-probabilities.
        edges: [shape=(N + 1,)] int64 beat segment boundaries (``render.segment_edges``).
        downbeat_phase: [beats] first downbeat (SKIP boundaries).
        target_samples: [samples] wanted output length.
        tolerance_samples: [samples] allowed distance from the target.
        per_beat: score each move over the beats it consumes (see :func:`most_likely_actions`).

    Returns:
        [shape=(k, 3)] int64 (type, size, amount) per step, valid under the action masks.

    Raises:
        ParameterError: the target is outside what the edit language can reach on this grid.
    """
    moves = _moves(lp, np.asarray(edges, np.int64), downbeat_phase, per_beat=per_beat)
    lo, hi = target_samples - tolerance_samples, target_samples + tolerance_samples
    longest = _max_remaining(moves)
    if longest[0, 0] < lo:
        raise ParameterError(f"at most {longest[0, 0]} samples are reachable")
    width = max(1, tolerance_samples)
    ref = _lagrangian_reference(moves, target_samples)
    for band in (2 * tolerance_samples, None):  # the full search only if the band found nothing
        path = _search(moves, longest, lo=lo, hi=hi, width=width, ref=ref, band=band)
        if path is None:  # a finer grid of buckets keeps more distinct lengths alive
            path = _search(moves, longest, lo=lo, hi=hi, width=max(1, width // 8), ref=ref,
                           band=band)  # fmt: skip
        if path is not None:
            return path
    raise ParameterError(f"no edit within {tolerance_samples} samples of {target_samples}")


def max_output_samples(edges: np.ndarray, downbeat_phase: int) -> int:
    """[samples] the longest output the searched moves can make on this grid (every LOOP and
    JUMP_BACK at its longest)."""
    N = len(edges) - 1
    zeros = BeatLogProbs(
        np.zeros((N, N_TYPES)), np.zeros((N, N_TYPES, N_SIZES)),
        np.zeros((N, N_TYPES, N_SIZES, N_AMOUNTS)),
    )  # fmt: skip
    return int(_max_remaining(_moves(zeros, np.asarray(edges, np.int64), downbeat_phase))[0, 0])


def most_likely_actions(
    lp: BeatLogProbs, *, n_beats: int, downbeat_phase: int, per_beat: bool = True
) -> np.ndarray:
    """The decision list of highest summed log-probability under ``lp``, with no length goal.

    With ``per_beat`` (a per-beat label head, e.g. the supervised baseline's), every raw beat a
    decision consumes scores that decision's (type, size, amount) at that beat: the convention
    the head was trained with (each beat labelled with the decision that consumed it,
    ``supervised_data.beat_labels``), so the list is the most likely labelling of the whole track
    the edit language can express, and a size predicted at one beat cannot overrule the types of
    the beats it would swallow. A JUMP_BACK consumes no beat and scores at its cursor.

    Exact over the moves of the edit state machine (a backward pass over (cursor, last move was a
    jump)); REPEAT_PREV, whose validity depends on the output so far, is checked on the path
    and, where it was not valid, ruled out at that cursor and the pass repeated.

    Returns:
        [shape=(k, 3)] int64 (type, size, amount) per step, valid under the action masks.
    """
    from editorbot.editing.actions import initial_state, is_valid, step

    edges = np.arange(n_beats + 1, dtype=np.int64)  # lengths play no part here
    m = _moves(lp, edges, downbeat_phase, per_beat=per_beat, repeat_prev=True)
    while True:  # each pass rules out one finite move, so this ends
        path = _best_path(m, m.score)
        state = initial_state(n_beats, downbeat_phase=downbeat_phase)
        for c, k in path:
            if not is_valid(state, *(int(x) for x in m.action[c, k])):
                m.score[c, k] = -np.inf
                break
            state, _ = step(state, *(int(x) for x in m.action[c, k]))
        else:
            return np.array([m.action[c, k] for c, k in path], np.int64).reshape(-1, 3)


def _moves(
    lp: BeatLogProbs, edges: np.ndarray, downbeat_phase: int, *, per_beat: bool = False,
    repeat_prev: bool = False,
) -> _Moves:  # fmt: skip
    """Every searched move from every cursor: its best action, score and exact length.

    With ``per_beat``, a move's score is the sum of ``lp``'s joint over the raw beats it consumes
    (see :func:`most_likely_actions`); otherwise the joint at its cursor. ``repeat_prev`` adds
    REPEAT_PREV moves with a length of 0 (for searches that ignore length only)."""
    N = len(edges) - 1
    joint = lp.joint()
    assert joint.shape == (N, N_TYPES, N_SIZES, N_AMOUNTS)
    b = _SlotBuilder(joint, edges, per_beat=per_beat)
    b.plain()
    b.zero_length(downbeat_phase)
    b.rescaled()
    b.jumps()
    if repeat_prev:
        b.repeats()
    return b.build()


class _SlotBuilder:
    """Collects move slots, each an (N,) array of score, action, new cursor and length."""

    def __init__(self, joint: np.ndarray, edges: np.ndarray, *, per_beat: bool) -> None:
        valid = AMOUNT_VALID[None, :, None, :]
        self.joint = np.where(valid, joint, -np.inf)
        self.edges = edges
        self.N = N = len(edges) - 1
        self.c = np.arange(N)
        self.left = N - self.c
        self.slots: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]] = []
        # [log-prob] (N + 1, types, sizes, amounts) running sum over beats of the (finite) joint
        self.cum = None
        if per_beat:
            self.cum = np.concatenate([np.zeros((1, *joint.shape[1:])), np.cumsum(joint, 0)])

    def at(self, s: int, new_c: np.ndarray) -> np.ndarray:
        """[log-prob] (N, types, amounts) score of every (type, amount) of size ``s`` for the
        move from each cursor to ``new_c``: the joint at the cursor, or (per beat) its sum over
        the beats [cursor, new_c)."""
        if self.cum is None:
            return self.joint[:, :, s, :]
        end = np.clip(np.broadcast_to(new_c, (self.N,)), 0, self.N)
        spanned = self.cum[end, :, s, :] - self.cum[self.c, :, s, :]
        return np.where(AMOUNT_VALID[None], spanned, -np.inf)

    def add(
        self, score: np.ndarray, action: tuple[Any, Any, Any], new_c: np.ndarray,
        delta: np.ndarray, jump: bool = False,
    ) -> None:  # fmt: skip
        a = np.stack(np.broadcast_arrays(*(np.asarray(x) for x in action), self.c), -1)[:, :3]
        N = self.N
        self.slots.append((score, a, np.minimum(new_c, N), np.broadcast_to(delta, (N,)), jump))

    def seg(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """[samples] raw length of beats [a, b), clipped to the track."""
        return self.edges[np.clip(b, 0, self.N)] - self.edges[np.clip(a, 0, self.N)]

    def plain(self) -> None:
        """Types whose output is the segment as long as it is: the best of them per size."""
        N, c = self.N, self.c
        for s, n in enumerate(_SIZES.tolist()):
            flat = self.at(s, c + n)[:, list(_PLAIN)].reshape(N, -1)
            k = flat.argmax(-1)
            score = np.where(n <= self.left, flat[c, k], -np.inf)
            types = np.array(_PLAIN)[k // N_AMOUNTS]
            self.add(score, (types, s, k % N_AMOUNTS), c + n, self.seg(c, c + n))

    def zero_length(self, phase: int) -> None:
        """CUT and SKIP (nothing plays), and SWAP_NEXT (two segments, their own length)."""
        c, neutral = self.c, 2
        for s, n in enumerate(_SIZES.tolist()):
            skip_end = np.minimum(c + n - (c - phase) % n, self.N)  # actions.skip_end
            for t, valid, new_c, delta in (
                (_T.CUT, n <= self.left, c + n, np.zeros(1, np.int64)),
                (_T.SKIP, self.left > 0, skip_end, np.zeros(1, np.int64)),
                (_T.SWAP_NEXT, 2 * n <= self.left, c + 2 * n, self.seg(c, c + 2 * n)),
            ):
                score = np.where(valid, self.at(s, new_c)[:, t, neutral], -np.inf)
                self.add(score, (t, s, neutral), new_c, delta)

    def rescaled(self) -> None:
        """SPEED_UP / SPEED_DOWN (the vocoder's rounding) and LOOP (repeats)."""
        c = self.c
        for t in (_T.SPEED_UP, _T.SPEED_DOWN, _T.LOOP):
            for s, n in enumerate(_SIZES.tolist()):
                raw = self.seg(c, c + n)
                for a in np.flatnonzero(AMOUNT_VALID[t]).tolist():
                    value = float(AMOUNT_VALUES[t, a])
                    if t == _T.LOOP:
                        delta = raw * int(value)
                    else:
                        delta = np.array([body_samples(x, value) for x in raw.tolist()], np.int64)
                    score = np.where(n <= self.left, self.at(s, c + n)[:, t, a], -np.inf)
                    self.add(score, (t, s, a), c + n, delta)

    def jumps(self) -> None:
        """JUMP_BACK: replays ``size`` beats from k behind; the cursor stays."""
        c = self.c
        for a in range(N_AMOUNTS):
            start = c - int(AMOUNT_VALUES[_T.JUMP_BACK, a])
            valid = (start >= 0) & (self.left > 0)
            for s, n in enumerate(_SIZES.tolist()):
                score = np.where(valid, self.joint[:, _T.JUMP_BACK, s, a], -np.inf)
                self.add(score, (_T.JUMP_BACK, s, a), c, self.seg(start, start + n), True)

    def repeats(self) -> None:
        """REPEAT_PREV (replays the last ``size`` output beats; the cursor moves by the size).
        Its length and validity depend on the output so far, which a cell does not know: the
        length is left at 0 and the caller checks validity on the path."""
        c = self.c
        for s, n in enumerate(_SIZES.tolist()):
            for a in np.flatnonzero(AMOUNT_VALID[_T.REPEAT_PREV]).tolist():
                scores = self.at(s, c + n)[:, _T.REPEAT_PREV, a]
                score = np.where(n <= self.left, scores, -np.inf)
                self.add(score, (_T.REPEAT_PREV, s, a), c + n, np.zeros(1, np.int64))

    def build(self) -> _Moves:
        def stack(i: int) -> np.ndarray:
            return np.stack([x[i] for x in self.slots], 1).astype(np.int64)

        return _Moves(
            score=np.stack([x[0] for x in self.slots], 1),
            action=stack(1), new_cursor=stack(2), delta=stack(3),
            jump=np.array([x[4] for x in self.slots]),
        )  # fmt: skip


def _max_remaining(m: _Moves) -> np.ndarray:
    """[samples] (N + 1, 2): the most output reachable from (cursor, last was jump)."""
    N = m.score.shape[0]
    best = np.full((N + 1, 2), _NONE, np.int64)
    best[N] = 0
    for c in range(N - 1, -1, -1):
        ok = np.isfinite(m.score[c])
        step = ~m.jump & ok
        tails = m.delta[c, step] + best[m.new_cursor[c, step], 0]
        best[c, 1] = tails.max(initial=_NONE)
        jumps = m.jump & ok
        via_jump = (m.delta[c, jumps] + best[c, 1]).max(initial=_NONE)
        best[c, 0] = max(best[c, 1], via_jump)
    return best


def _lagrangian_reference(m: _Moves, target: int, n_iter: int = 16) -> np.ndarray:
    """[samples] (2, N + 1) the output length before each cursor along two paths of the relaxed
    problem max sum(log-prob) + lam * length, one ending shorter than ``target`` and one longer
    (lam bisected), as (elementwise min, elementwise max).

    The relaxed problem has no length dimension (one backward pass per lam), and its paths are
    the most likely ones for their own length; the exact search then looks only at lengths near
    the corridor between the two (``band``), which keeps it a few buckets wide.
    """
    lo_lam, hi_lam = -1e3, 1e3  # [log-prob per longest move]
    scale = 1.0 / max(float(m.delta.max()), 1.0)
    short = _relaxed_path(m, lo_lam * scale)[1]
    long = _relaxed_path(m, hi_lam * scale)[1]
    for _ in range(n_iter):
        lam = 0.5 * (lo_lam + hi_lam)
        length, prefix = _relaxed_path(m, lam * scale)
        if length == target:
            short = long = prefix
            break
        if length < target:
            lo_lam, short = lam, prefix
        else:
            hi_lam, long = lam, prefix
    return np.stack([np.minimum(short, long), np.maximum(short, long)])


def _relaxed_path(m: _Moves, lam: float) -> tuple[int, np.ndarray]:
    """Length and prefix lengths of the best path for score + ``lam`` * delta."""
    N = m.score.shape[0]
    prefix = np.zeros(N + 1, np.int64)
    length = 0
    for c, k in _best_path(m, m.score + lam * m.delta):
        length += int(m.delta[c, k])
        if not m.jump[k]:
            prefix[c + 1 : int(m.new_cursor[c, k]) + 1] = length
    return length, prefix


def _best_path(m: _Moves, gain: np.ndarray) -> list[tuple[int, int]]:
    """(cursor, slot) of each move of the path of highest summed ``gain`` [shape=(N, M)] from
    beat 0 to the end (exact: a backward pass over (cursor, last move was a jump))."""
    N = m.score.shape[0]
    V = np.full((N + 1, 2), -np.inf)
    V[N] = 0.0
    choice = np.zeros((N, 2), np.int64)
    for c in range(N - 1, -1, -1):
        tail = gain[c] + np.where(m.jump, 0.0, V[m.new_cursor[c], 0])
        step = np.where(m.jump, -np.inf, tail)
        choice[c, 1] = int(np.argmax(step))
        V[c, 1] = step[choice[c, 1]]
        jumps = np.where(m.jump, gain[c] + V[c, 1], -np.inf)
        k = int(np.argmax(jumps))
        choice[c, 0] = k if jumps[k] > V[c, 1] else choice[c, 1]
        V[c, 0] = max(V[c, 1], jumps[k])
    path, c, j = [], 0, 0
    while c < N:
        k = int(choice[c, j])
        path.append((c, k))
        if m.jump[k]:
            j = 1
            continue
        c, j = int(m.new_cursor[c, k]), 0
    return path


def _search(
    m: _Moves,
    longest: np.ndarray,
    *,
    lo: int,
    hi: int,
    width: int,
    ref: np.ndarray,
    band: int | None,
) -> np.ndarray | None:
    """Forward DP; the path of the best final cell within [lo, hi], or None.

    With ``band``, a cell at cursor c keeps only lengths within ``band`` of the corridor
    ``ref[:, c]``."""
    N, _ = m.score.shape
    pending: dict[int, list[tuple[np.ndarray, ...]]] = {}
    cells: dict[int, tuple[np.ndarray, ...]] = {}
    zero = np.zeros(1, np.int64)
    pending[0] = [(zero, np.zeros(1), np.full(1, -1), zero, np.full(1, -1))]
    for cell in range(2 * N + 1):
        c, j = divmod(cell, 2)
        if cell not in pending:
            continue
        L, S, parent, pos, slot = _resolve(pending.pop(cell), width)
        cells[cell] = (L, S, parent, pos, slot)
        if c < N:
            _expand(m, longest, cell, L, S, pending, lo=lo, hi=hi, ref=ref, band=band)
    final = cells.get(2 * N)
    if final is None:
        return None
    length, S = final[0], final[1]
    ok = (length >= lo) & (length <= hi)
    if not ok.any():
        return None
    return _backtrack(m, cells, 2 * N, int(np.flatnonzero(ok)[np.argmax(S[ok])]))


def _resolve(parts: list[tuple[np.ndarray, ...]], width: int) -> tuple[np.ndarray, ...]:
    """Keep the best-scoring path per length bucket of the candidates reaching one cell."""
    L, S, parent, pos, slot = (np.concatenate(x) for x in zip(*parts, strict=True))
    bucket = L // width
    order = np.lexsort((-S, bucket))
    b = bucket[order]
    first = order[np.r_[True, b[1:] != b[:-1]]]
    return L[first], S[first], parent[first], pos[first], slot[first]


def _expand(
    m: _Moves,
    longest: np.ndarray,
    cell: int,
    L: np.ndarray,
    S: np.ndarray,
    pending: dict[int, list[tuple[np.ndarray, ...]]],
    *,
    lo: int,
    hi: int,
    ref: np.ndarray,
    band: int | None,
) -> None:
    c, j = divmod(cell, 2)
    slots = np.flatnonzero(np.isfinite(m.score[c]) & ~(m.jump & (j == 1)))
    dest = 2 * m.new_cursor[c, slots] + m.jump[slots]
    dc, dj = dest // 2, dest % 2
    lower, upper = lo - longest[dc, dj], np.full(len(slots), hi)
    if band is not None:
        lower = np.maximum(lower, ref[0, dc] - band)
        upper = np.minimum(upper, ref[1, dc] + band)
    newL = L[:, None] + m.delta[c, slots][None, :]  # [K, slots]
    rows, cols = np.nonzero((newL >= lower) & (newL <= upper))
    if not len(rows):
        return
    order = np.argsort(dest[cols], kind="stable")
    rows, cols = rows[order], cols[order]
    d = dest[cols]
    newS = S[rows] + m.score[c, slots[cols]]
    lengths, parent = newL[rows, cols], np.full(len(rows), cell)
    starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]]).tolist()
    for a, b in zip(starts, [*starts[1:], len(d)], strict=True):
        part = (lengths[a:b], newS[a:b], parent[a:b], rows[a:b], slots[cols[a:b]])
        pending.setdefault(int(d[a]), []).append(part)


def _backtrack(
    m: _Moves, cells: dict[int, tuple[np.ndarray, ...]], cell: int, i: int
) -> np.ndarray:
    actions = []
    while True:
        _, _, parent, pos, slot = cells[cell]
        if parent[i] < 0:
            break
        c = int(parent[i]) // 2
        actions.append(m.action[c, slot[i]])
        cell, i = int(parent[i]), int(pos[i])
    return np.array(actions[::-1], np.int64).reshape(-1, 3)
