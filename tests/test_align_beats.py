"""The edit's beats decided on the samples when the alignment's path runs along the wrong copy.

Known answers: a raw track whose second half repeats its first half almost exactly (a chorus
sung again: the same bars with a -25 dB difference), an edit rendered from a known decision
list, and an alignment built by hand that names the repeat instead of the original, as the
feature DP does when both sound alike. The samples must bring every beat back to the original.
"""

from __future__ import annotations

import numpy as np

from editorbot.editing.actions import ActionAmount, ActionSize, ActionType
from editorbot.editing.align import Alignment, build_variants
from editorbot.editing.align_beats import beat_edges, out_beats
from editorbot.editing.align_dp import Unit
from editorbot.editing.align_effects import EffectConfig
from editorbot.editing.decisions import Decision
from editorbot.editing.render import render

T, S, A = ActionType, ActionSize, ActionAmount
SR = 22050
HOP = 1024
"""[samples] one alignment frame at 22,050 Hz."""
BEAT = 11025
"""[samples] 0.5 s beats."""
HALF = 16
"""[beats] the repeat starts here: beat b + 16 is beat b again, 25 dB apart."""


def _raw() -> np.ndarray:
    """[shape=(1, 32 beats)] noise bursts; beats 16-31 repeat 0-15 plus a -25 dB difference."""
    rng = np.random.default_rng(1)
    env = np.exp(-(np.arange(BEAT) / SR) / 0.15)
    first = np.concatenate([rng.normal(size=BEAT) * (0.3 + env) for _ in range(HALF)])
    again = first + 10 ** (-25 / 20) * rng.normal(size=first.shape) * np.std(first)
    return (0.2 * np.concatenate([first, again])).astype(np.float32)[None]


def _units_on_the_repeat(result, variant_of: dict[int, int], on_repeat: set[int]) -> list[Unit]:
    """One unit per output beat; those of ``on_repeat`` name the repeat (beat + 16) instead of
    the original."""
    units = []
    for seg in result.segments:
        n = seg.beat_end - seg.beat_start
        length = (seg.out_end - seg.out_start) / n  # [samples] per output beat (stretch too)
        order = range(n - 1, -1, -1) if seg.type == T.REVERSE else range(n)
        for i, k in enumerate(order):
            start = seg.out_start + round(i * length)
            b = seg.beat_start + k
            named = b + HALF if b in on_repeat else b
            units.append(Unit(round(start / HOP), 0, named, variant_of.get(b, 0), 0.0))
    return units


def _out(on_repeat: set[int]) -> list:
    y = _raw()
    edges = np.arange(2 * HALF + 1) * BEAT
    decisions = [
        Decision(0, T.KEEP, S.BAR, A.NEUTRAL),
        Decision(4, T.SPEED_UP, S.BAR, A.NEUTRAL),  # phase-vocoded: no beat of it is exact
        Decision(8, T.KEEP, S.BAR, A.NEUTRAL),
        Decision(12, T.REVERSE, S.BAR, A.NEUTRAL),
        Decision(16, T.CUT, S.PHRASE, A.NEUTRAL),  # the repeat itself is not played
    ]
    result = render(y, sr=SR, beat_samples=edges[:-1], decisions=decisions)
    variants = build_variants()
    speed = next(i for i, v in enumerate(variants) if v.type == T.SPEED_UP and v.value == 1.2)
    reverse = next(i for i, v in enumerate(variants) if v.reverse)
    variant_of = {**dict.fromkeys(range(4, 8), speed), **dict.fromkeys(range(12, 16), reverse)}
    units = _units_on_the_repeat(result, variant_of, on_repeat)
    al = Alignment(units, variants, HOP / SR, 1.0)
    return out_beats(
        al, y, result.y, edges=beat_edges(edges[:-1] / SR, SR, y.shape[1]), sr=SR, hop=HOP,
        effects=EffectConfig(),
    )  # fmt: skip


_TRUE_BEATS = [*range(12), 15, 14, 13, 12]
"""The raw beats the edit plays (the reversed bar last beat first)."""
_TRUE_EFFECTS = [T.KEEP] * 4 + [T.SPEED_UP] * 4 + [T.KEEP] * 4 + [T.REVERSE] * 4


def test_a_path_along_the_repeat_comes_back_to_the_original():
    out = _out(on_repeat=set(range(HALF)))
    # Exact: the samples find the original everywhere. Beats 0-3 and 8-11 are exact copies of
    # it (beat 0 found a phrase back from the named one); the stretched bar goes on from
    # them, since the alignment's run does; the reversed bar's resynthesis is exact only there
    # (a reversal needs no phase vocoder).
    assert [o.beat for o in out] == _TRUE_BEATS
    assert [o.effect for o in out] == _TRUE_EFFECTS


def test_a_jump_to_the_repeat_at_a_stretched_bar_is_read_as_going_on():
    # The alignment jumps to the repeat where the stretch starts (its features cannot tell
    # the two copies apart) and back after it.
    out = _out(on_repeat=set(range(4, 8)))
    # Exact: the original bar is the same music to -25 dB, and going on needs no decision.
    assert [o.beat for o in out] == _TRUE_BEATS
    assert [o.effect for o in out] == _TRUE_EFFECTS
