"""Parsed decisions to final ones: each effect decision's type and amount, by resynthesis.

The parse (:mod:`editorbot.editing.align_parse`) knows which raw beats each decision plays and
which effect family they carry. Here the decisions are walked in output order at the tracks'
own rate, following the state machine and the positions the renderer lays each segment at, and
each effect decision's type and amount are chosen by resynthesising its whole segment where the
edit plays it, so the output positions of later segments follow exactly (a wrong speed amount
would shift everything after it).

Shape:
    y: [shape=(C, L)] at the tracks' own rate; edges: [shape=(N + 1,)] beat boundaries, samples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from editorbot.audio.io import Audio
from editorbot.editing.actions import (
    SIZE_BEATS,
    ActionAmount,
    ActionSize,
    ActionType,
    EditState,
    initial_state,
    step,
)
from editorbot.editing.align_beats import FAMILIES
from editorbot.editing.align_effects import LEVEL_EFFECTS, EffectConfig, EffectGuess, best_effect
from editorbot.editing.align_parse import OutBeat, Parsed
from editorbot.editing.decisions import Decision
from editorbot.editing.render import segment_layout

logger = logging.getLogger(__name__)

_T = ActionType


@dataclass(frozen=True)
class ResolveConfig:
    """How effect decisions get their type and amount."""

    effect_ok_db: float = -20.0
    """[dB] resynthesis residual at or below which an effect segment is fully trusted."""
    split_db: float = -50.0
    """[dB] residual above which a level-effect decision is tried in parts (an exact
    resynthesis, with the renderer's context, matches to float rounding, about -120 dB; a
    -6 dB instead of -3 dB high shelf on dull music leaves only about -30 dB)."""
    split_gain_db: float = 3.0
    """[dB] how much better the parts must explain the segment for the split to stand."""
    anchor_ms: float = 60.0
    """[ms] how far an effect segment's start is looked for around where the walker puts it
    (the tracked grid's error summed over a few unseen boundaries)."""


@dataclass(frozen=True)
class _Context:
    """What every step of the walk reads."""

    raw: Audio
    edit_y: np.ndarray
    """[shape=(C, L_edit)] the edit at the raw's rate and channels."""
    edges: np.ndarray
    """[shape=(N + 1,)] [samples] raw beat boundaries."""
    hop: int
    """[samples] one alignment frame (how far off an alignment start may be)."""
    effects: EffectConfig
    config: ResolveConfig


def resolve(
    parsed: list[Parsed],
    out: list[OutBeat],
    raw: Audio,
    edit_y: np.ndarray,
    *,
    edges: np.ndarray,
    hop: int,
    beat_confidence: np.ndarray,
    downbeat_phase: int,
    effects: EffectConfig,
    config: ResolveConfig,
) -> list[Decision]:
    """Walk the decisions in output order at the raw rate, choosing each effect's type and amount.

    Args:
        parsed: the parse, in cursor order.
        out: the edit's beats the parse explained (their ``edit_start`` anchors effects).
        raw: the raw track.
        edit_y: [shape=(C, L_edit)] the edit at the raw's rate and channels.
        edges: [shape=(N + 1,)] [samples] raw beat boundaries.
        hop: [samples] one alignment frame.
        beat_confidence: [shape=(N,)] [0..1] the alignment's confidence per raw beat.
        downbeat_phase: [beats] the grid's first downbeat.
        effects: the effect detection thresholds.
        config: settings.
    """
    ctx = _Context(raw, edit_y, edges, hop, effects, config)
    walker = _Walker(initial_state(len(edges) - 1, downbeat_phase=downbeat_phase), edges)
    decisions: list[Decision] = []
    starts: list[int] = []  # [edit samples] where each decision's audio starts
    for p in parsed:
        c = _decision_confidence(p, beat_confidence)
        if p.type not in FAMILIES:
            starts.append(walker.pos)
            walker.take(p.type, p, p.amount)
            decisions.append(Decision(p.beat, p.type, p.size, p.amount, float(round(c, 3))))
            continue
        walker.pos = _anchor(p, _near_start(out, p, walker.pos, ctx), ctx)
        pieces = (
            _level_pieces(p.beat, p.size, walker.pos, ctx)
            if p.type in LEVEL_EFFECTS
            else [(p.beat, p.size, _guess(p.beat, p.size, walker.pos, FAMILIES[p.type], ctx))]
        )
        for beat, size, g in pieces:
            starts.append(walker.pos)
            walker.take(g.type, replace(p, beat=beat, size=size), g.amount)
            gc = _effect_confidence(g.residual_db, g.margin_db, config.effect_ok_db)
            decisions.append(Decision(beat, g.type, size, g.amount, float(round(min(c, gc), 3))))
    return _merged_level_runs(decisions, starts, beat_confidence, ctx)


_MERGE_SIZES = (ActionSize.PHRASE, ActionSize.TWO_BARS, ActionSize.BAR)
_SPEEDS = (_T.SPEED_UP, _T.SPEED_DOWN)


def _merged_level_runs(
    decisions: list[Decision], starts: list[int], beat_confidence: np.ndarray, ctx: _Context
) -> list[Decision]:
    """``decisions`` with each run of KEEP and level-effect decisions that one level effect of
    a larger size explains exactly (to ``split_db``) replaced by that one decision.

    The converse of :func:`_level_pieces`: the start of a long fade changes its beats by less
    than the 'changed' threshold, so they come out of the per-beat pass as KEEP beside a
    shorter fade; the one fade over the whole run re-renders the edit as exactly and says what
    the editor did. Level effects keep the length and the state machine's cursor moves the same,
    so the decisions after a merged run are unchanged. Only a type already in the run is
    tried for it, and only at a decision's first beat; a run that holds speed changes (the
    per-beat pass read its beats' lengths off quiet audio, a fade's start, and they were
    re-anchored after it) may be any one level effect, and is merged only where that re-renders
    the whole run exactly, which no length change can.
    """
    out: list[Decision] = []
    i = 0
    while i < len(decisions):
        merged = _merge_at(decisions, starts, i, beat_confidence, ctx)
        if merged is None:
            out.append(decisions[i])
            i += 1
            continue
        decision, j = merged
        out.append(decision)
        i = j
    return out


def _merge_at(
    decisions: list[Decision], starts: list[int], i: int, conf: np.ndarray, ctx: _Context
) -> tuple[Decision, int] | None:
    """(the one decision replacing decisions ``[i, j)``, ``j``), or None."""
    kinds = (_T.KEEP, *LEVEL_EFFECTS, *_SPEEDS)
    first = decisions[i]
    if first.type not in kinds:
        return None
    n_beats = len(ctx.edges) - 1
    for size in _MERGE_SIZES:
        end = first.beat + SIZE_BEATS[size]
        if end > n_beats or SIZE_BEATS[size] <= SIZE_BEATS[first.size]:
            continue
        j, at = i, first.beat
        while j < len(decisions) and decisions[j].beat == at and decisions[j].type in kinds:
            at += SIZE_BEATS[decisions[j].size]
            j += 1
            if at >= end:
                break
        run = decisions[i:j]
        types = {d.type for d in run} - {_T.KEEP}
        if at != end or len(run) < 2 or not types:
            continue
        if types & set(_SPEEDS):  # beat lengths misread (a quiet fade's seams): any level effect
            types = set(LEVEL_EFFECTS)
        g = _guess(first.beat, size, starts[i], tuple(sorted(types)), ctx, _reach(ctx))
        if g.type == _T.KEEP or g.residual_db > ctx.config.split_db:
            continue
        c = float(conf[first.beat : end].min())
        gc = _effect_confidence(g.residual_db, g.margin_db, ctx.config.effect_ok_db)
        logger.debug("beats %d-%d: %d decisions as one %s %s (%.1f dB)", first.beat, end,
                     len(run), g.type.name, size.name, g.residual_db)  # fmt: skip
        return Decision(first.beat, g.type, size, g.amount, float(round(min(c, gc), 3))), j
    return None


def _near_start(out: list[OutBeat], p: Parsed, pos: int, ctx: _Context) -> int:
    """[edit samples] the walker's position, or where the edit plays the decision's first beat
    (as the per-beat pass placed it) when the walker is further than ``anchor_ms`` (plus a frame)
    from every such place (a misread decision before it, such as a repeat read as a cut,
    shifted all that follows)."""
    first = p.beat + SIZE_BEATS[p.size] - 1 if p.type == _T.REVERSE else p.beat
    starts = [o.edit_start for o in out if o.beat == first and o.edit_start >= 0]
    if not starts:
        return pos
    near = min(starts, key=lambda t: abs(t - pos))
    reach = ctx.config.anchor_ms * 1e-3 * ctx.raw.sr + ctx.hop
    return pos if abs(near - pos) <= reach else near


def _anchor(p: Parsed, pos: int, ctx: _Context) -> int:
    """[edit samples] where effect decision ``p`` starts: where its first beat's (a reversed
    segment's whole) best resynthesis lines up with the edit, within ``anchor_ms`` of the
    walker's position (kept where no candidate explains that beat to ``effect_ok_db``).

    The walker sums segment lengths from the grid; on a tracked grid a boundary no seam showed
    (see :mod:`editorbot.editing.align_grid`) can be a few ms off, and a resynthesis laid 50
    samples off explains nothing (0 dB instead of -120 dB at the right place).
    """
    # A reversed segment starts with its last beat: only the whole of it lines up.
    size = p.size if p.type == _T.REVERSE else ActionSize.BEAT
    g = _guess(p.beat, size, pos, FAMILIES[p.type], ctx, _reach(ctx))
    # Only a start some candidate explains is a landmark; elsewhere the correlation is noise.
    return g.edit_start if g.residual_db <= ctx.config.effect_ok_db else pos


def _reach(ctx: _Context) -> int:
    """[samples] how far an effect's start is searched (``anchor_ms``)."""
    return round(ctx.config.anchor_ms * 1e-3 * ctx.raw.sr)


def _guess(
    beat: int,
    size: ActionSize,
    pos: int,
    types: tuple[ActionType, ...],
    ctx: _Context,
    search: int = 0,
) -> EffectGuess:
    """The effect that best explains raw beats ``[beat, beat + size)`` laid at edit ``pos``
    (or up to ``search`` samples either side)."""
    s, e = int(ctx.edges[beat]), int(ctx.edges[beat + SIZE_BEATS[size]])
    return best_effect(
        ctx.raw.y, ctx.edit_y, sr=ctx.raw.sr, raw_start=s, raw_end=e, edit_start=pos,
        types=types, config=ctx.effects, search=search,
    )  # fmt: skip


def _level_pieces(
    beat: int, size: ActionSize, pos: int, ctx: _Context
) -> list[tuple[int, ActionSize, EffectGuess]]:
    """A level-effect decision, split top-down where one effect does not explain it.

    The parse groups changed beats as one family, so a run of an EQ then a fade reaches here as
    one decision; when its best single resynthesis leaves more than ``split_db`` and the halves
    (four beats for a bar) explain it ``split_gain_db`` better, each part is decided on its own.
    Level effects keep the length, so the parts sit at ``pos`` plus their raw lengths.
    """
    g = _guess(beat, size, pos, LEVEL_EFFECTS, ctx)
    if size == ActionSize.BEAT or g.residual_db <= ctx.config.split_db:
        return [(beat, size, g)]
    part = ActionSize(size - 1) if size != ActionSize.BAR else ActionSize.BEAT
    n = SIZE_BEATS[part]
    pieces = []
    for b in range(beat, beat + SIZE_BEATS[size], n):
        at = pos + int(ctx.edges[b]) - int(ctx.edges[beat])
        pieces += _level_pieces(b, part, at, ctx)
    split = 10.0 * np.log10(np.mean([10.0 ** (q.residual_db / 10.0) for _, _, q in pieces]))
    logger.debug("beat %d %s: whole %.1f dB, parts %.1f dB", beat, size.name, g.residual_db, split)
    return pieces if split <= g.residual_db - ctx.config.split_gain_db else [(beat, size, g)]


class _Walker:
    """Follows the state machine and the edit's sample positions, as the renderer lays them."""

    def __init__(self, state: EditState, edges: np.ndarray) -> None:
        self.state, self.edges = state, edges
        self.pos = 0
        self.out_beats: list[int] = []

    def take(self, t: ActionType, p: Parsed, a: ActionAmount) -> None:
        """Step the state machine with decision ``p`` read as ``(t, a)`` and lay its segments
        (:func:`editorbot.editing.render.segment_layout`)."""
        kind = _T.KEEP if t in FAMILIES else t
        self.state, segs = step(
            self.state, kind, p.size, p.amount if kind == t else ActionAmount.NEUTRAL
        )
        for seg in segs:
            # An effect plays its beats as KEEP would, in the order and at the speed of (t, a).
            laid = seg if kind == t else replace(seg, type=t, amount=a)
            offsets, M = segment_layout(self.edges, laid, out_beats=self.out_beats, pos=self.pos)
            for _ in range(seg.repeats):
                self.out_beats += (self.pos + offsets).tolist()
                self.pos += M


def _decision_confidence(p: Parsed, conf: np.ndarray) -> float:
    n = SIZE_BEATS[p.size]
    span = conf[p.beat : p.beat + n]
    c = float(span.min()) if len(span) else 1.0
    return c / (1.0 + p.mismatches)


def _effect_confidence(residual_db: float, margin_db: float, ok_db: float) -> float:
    """[0..1] 1 when the resynthesis is near exact and clearly better than the runner-up."""
    fit = float(np.clip((0.0 - residual_db) / (0.0 - ok_db), 0.0, 1.0))
    return fit * float(np.clip(margin_db / 3.0, 0.0, 1.0))
