"""The edit's beats, each named as a raw beat with an effect family, checked on the samples.

The alignment (:mod:`editorbot.editing.align`) names a raw beat and a variant for every beat of
the edit from features. Features cannot tell apart music that sounds alike: a chorus and its
repeat, a bar and the same bar a phrase later. The alignment's path can therefore run along
the wrong copy for minutes; for beats played as is that costs nothing (an exact-copy check on
the samples finds the beat the edit really plays), but a changed beat has no exact copy, and
naming the wrong copy there turns "went on, with a stretched bar" into "jumped back 64 beats".

So each beat is decided on the samples, at the tracks' own rate:

1. an exact copy of a raw beat (:func:`editorbot.editing.align_effects.exact_beats`): KEEP;
2. else the candidates are the natural successor of the previous beat, the beat the last
   sample-checked beat says the path should be at (the alignment's beat plus the offset
   between them), and the alignment's own beat. A level or reversed beat is resynthesised
   from each under its effect family and the best wins (near ties to the more plausible); a
   stretched beat (speed, pitch: the phase vocoder's frames start with the segment, so one
   beat alone never resynthesises exactly) follows the path where the alignment's run goes on,
   and where it jumps takes the first candidate that is the same music as the alignment's;
3. a changed beat no level effect explains, next to stretched ones, may also carry their effect
   (the alignment flips variant beat by beat inside a slowed bar); the parse picks the reading.

Shape:
    y: [shape=(C, L)] at the tracks' own rate; edges: [shape=(N + 1,)] beat boundaries, samples.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from editorbot.editing import dsp
from editorbot.editing.actions import ActionType
from editorbot.editing.align import Alignment
from editorbot.editing.align_effects import (
    LEVEL_EFFECTS,
    EffectConfig,
    EffectGuess,
    best_effect,
    exact_beats,
    refine_start,
    residual_db,
)
from editorbot.editing.align_parse import OutBeat
from editorbot.editing.render import segment_edges

logger = logging.getLogger(__name__)

_T = ActionType
FAMILIES: dict[ActionType, tuple[ActionType, ...]] = {
    _T.SPEED_UP: (_T.SPEED_UP, _T.SPEED_DOWN),
    _T.SPEED_DOWN: (_T.SPEED_UP, _T.SPEED_DOWN),
    # Chroma cannot tell -7 semitones from +5 (an octave apart): both directions are re-tried.
    _T.PITCH_UP: (_T.PITCH_UP, _T.PITCH_DOWN),
    _T.PITCH_DOWN: (_T.PITCH_UP, _T.PITCH_DOWN),
    _T.REVERSE: (_T.REVERSE,),
    **{t: LEVEL_EFFECTS for t in LEVEL_EFFECTS},
}
"""Types tried on a changed segment, by the type the per-beat pass saw."""
NEAR_COPY_DB = -12.0
"""[dB] two raw beats whose difference is this far below the beat are the same music played
again (a repeated bar: -18 to -37 dB on demo songs; different music is near 0 dB)."""
LEVEL_FAMILY = {t: _T.GAIN for t in LEVEL_EFFECTS}
"""One beat cannot tell a fade from a gain or a shelf from a reverb reliably; the parse groups
changed beats as one family and the whole segment's resynthesis picks the type."""


def beat_edges(beat_times: np.ndarray, sr: int, L: int) -> np.ndarray:
    """[shape=(N + 1,)] beat segment boundaries in samples (beat 0 from 0, the last to L): the
    renderer's :func:`~editorbot.editing.render.segment_edges` of the grid at ``sr``."""
    b = np.round(np.asarray(beat_times) * sr).astype(np.int64)
    return segment_edges(b, L, check=False)


def out_beats(
    al: Alignment,
    y_raw: np.ndarray,
    y_edit: np.ndarray,
    *,
    edges: np.ndarray,
    sr: int,
    hop: int,
    effects: EffectConfig,
    near_db: float = NEAR_COPY_DB,
    explained_db: float = -20.0,
    tie_db: float = 1.0,
) -> list[OutBeat]:
    """The edit's beats in edit order (reversed runs still last beat first).

    Args:
        al: the alignment.
        y_raw: [shape=(1, L)] mono raw at ``sr``.
        y_edit: [shape=(1, L_edit)] mono edit at ``sr``.
        edges: [shape=(N + 1,)] [samples] raw beat boundaries.
        sr: [Hz] the tracks' rate.
        hop: [samples at sr] one alignment frame.
        effects: the 'unchanged' threshold.
        near_db: [dB] raw beats this alike are the same music (see :data:`NEAR_COPY_DB`).
        explained_db: [dB] a level effect whose resynthesis leaves more than this explains
            nothing (an exact one leaves about -120 dB; the quietest, a 1 dB gain, -19 dB).
        tie_db: [dB] resyntheses this close explain a changed beat equally well.
    """
    N = len(edges) - 1
    out: list[OutBeat] = []
    unexplained: list[bool] = []  # per out beat: a level guess that explains nothing
    shift = 0  # [beats] where the samples put the path, minus where the alignment does
    last: int | None = None  # the previous unit's raw beat, as the alignment named it
    after: int | None = None  # the raw beat that would come next if the edit went on
    for u in al.units:
        var = al.variants[u.variant]
        start = u.start_frame * hop
        prev = None if after is None else after - 1
        step = -1 if var.reverse else 1
        went_on = last is not None and u.beat == last + step
        last = u.beat
        # Samples first, whatever the variant: a stuttered beat the DP read as a stretched
        # neighbour is still an exact copy of a raw beat.
        exact = exact_beats(
            y_raw, y_edit, edges, u.beat, start, prev, hop, sr, effects, path=u.beat + shift
        )
        if exact:
            # A beat played again (a stutter) says nothing about the path's offset: the
            # alignment's path goes on through the repeated beats the edit consumed.
            if not (out and exact[0] == out[-1].beat):
                shift = exact[0] - u.beat
            after = exact[0] + 1
            out.append(OutBeat(exact[0], _T.KEEP, tuple(exact[1:]), start))
            unexplained.append(False)
            continue
        # The edit going on from the previous beat, the alignment's path moved by the offset
        # the samples found, the alignment's own beat: most plausible first.
        nxt = out[-1].beat - 1 if out and var.reverse else None if prev is None else prev + 1
        path = u.beat + shift
        cands = [b for b in dict.fromkeys([nxt, path, u.beat]) if b is not None and 0 <= b < N]
        if var.type in _STRETCHED:
            # A stretched beat resynthesised alone is not the edit's (the phase vocoder's frames
            # start with the segment), so its residual cannot choose. Where the alignment's run
            # goes on, so does the path; where the alignment jumps, the first candidate that is
            # the same music as the beat it jumped to wins.
            if went_on and 0 <= path < N:
                beat = path
            else:
                beat = next(b for b in cands if _near_copy(y_raw, edges, b, u.beat, hop, near_db))
            effect, weak = var.type, False
        else:
            types = LEVEL_EFFECTS if var.type == _T.KEEP else FAMILIES[var.type]
            scored = [(_guess(y_raw, y_edit, edges, b, start, hop, sr, types), b) for b in cands]
            # Near ties go to the more plausible candidate (the order above): repeated music
            # resynthesises about as well from either copy when neither is exact.
            best = min(g.residual_db for g, _ in scored)
            guess, beat = next((g, b) for g, b in scored if g.residual_db <= best + tie_db)
            effect = guess.type if var.type == _T.KEEP else var.type
            weak = var.type == _T.KEEP and guess.residual_db > explained_db
        unexplained.append(weak)
        # A reversed run plays its beats last to first; the edit goes on after its highest.
        in_run = var.reverse and bool(out) and beat == out[-1].beat - 1
        shift, after = beat - u.beat, (after if in_run else beat + 1)
        out.append(OutBeat(beat, LEVEL_FAMILY.get(effect, effect), (), start))
    return _join_stretched(out, unexplained)


def _join_stretched(out: list[OutBeat], unexplained: list[bool]) -> list[OutBeat]:
    """Beats no level effect explains, in a run of raw beats with a stretched one, may also be
    read as carrying its effect (``alt_effects``): the alignment switches variant beat by beat
    inside a slowed bar (a 5-20 % longer beat costs it about as much as a variant switch), and
    the parse can only group a bar whose beats carry one family. Up to ``_JOIN_REACH`` beats
    either side of the stretched one; the parse decides which reading needs fewer decisions."""
    fixed = list(out)
    for i, o in enumerate(out):
        if o.effect not in _STRETCHED:
            continue
        for step in (-1, 1):
            j = i
            for _ in range(_JOIN_REACH):
                j += step
                if not (0 <= j < len(out) and unexplained[j]):
                    break
                if abs(out[j].beat - out[j - step].beat) != 1:
                    break
                if o.effect not in fixed[j].alt_effects:
                    fixed[j] = replace(fixed[j], alt_effects=(*fixed[j].alt_effects, o.effect))
    return fixed


_JOIN_REACH = 3
"""[beats] how far from a stretched beat unexplained ones may take its effect (a bar's rest)."""


_STRETCHED = (_T.SPEED_UP, _T.SPEED_DOWN, _T.PITCH_UP, _T.PITCH_DOWN)
"""Variants rendered through the phase vocoder."""


def _near_copy(y: np.ndarray, edges: np.ndarray, b: int, c: int, hop: int, near_db: float) -> bool:
    """True if raw beat ``b`` is ``c`` or sounds like it to within ``near_db`` (a repeat of the
    same bar: the generator's repeats differ by -18 to -37 dB, unrelated beats by about 0)."""
    if b == c:
        return True
    s, n = int(edges[b]), int(min(edges[b + 1] - edges[b], edges[c + 1] - edges[c]))
    at = refine_start(y, y, s, s + n, int(edges[c]), hop)
    return residual_db(y[:, s : s + n], dsp.slice_padded(y, at, at + n), 0) < near_db


def _guess(
    y_raw: np.ndarray, y_edit: np.ndarray, edges: np.ndarray, beat: int, guess: int, hop: int,
    sr: int, types: tuple[ActionType, ...],
) -> EffectGuess:  # fmt: skip
    """The effect of ``types`` that best explains raw ``beat`` where the edit plays it near
    ``guess`` [samples] (within two ``hop`` [samples])."""
    s, e = int(edges[beat]), int(edges[beat + 1])
    if set(types) <= set(LEVEL_EFFECTS):  # same length: the raw's own start correlates
        start = refine_start(y_raw, y_edit, s, e, guess, hop)
        return best_effect(
            y_raw, y_edit, sr=sr, raw_start=s, raw_end=e, edit_start=start, types=types,
            keep=False,
        )  # fmt: skip
    return best_effect(
        y_raw, y_edit, sr=sr, raw_start=s, raw_end=e, edit_start=guess, types=types, keep=False,
        search=2 * hop,
    )  # fmt: skip


def forward_reversed_runs(out: list[OutBeat]) -> list[OutBeat]:
    """A reversed segment plays its beats last to first; put them in raw order for the parse,
    which reads a REVERSE like any effect on the beats under the cursor."""
    fixed, i = list(out), 0
    while i < len(fixed):
        j = i + 1
        while (
            j < len(fixed)
            and fixed[j].effect == _T.REVERSE == fixed[i].effect
            and fixed[j].beat == fixed[j - 1].beat - 1
        ):
            j += 1
        fixed[i:j] = fixed[i:j][::-1]
        i = j
    return fixed
