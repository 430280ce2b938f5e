"""The action table and the symbolic edit state machine (masks, step, finish)."""

from __future__ import annotations

import numpy as np
import pytest

from editorbot.editing.actions import (
    AMOUNT_VALID,
    N_AMOUNTS,
    N_SIZES,
    N_TYPES,
    SIZE_BEATS,
    ActionAmount,
    ActionSize,
    ActionType,
    action_masks,
    amount_value,
    finish,
    initial_state,
    is_structural,
    is_valid,
    step,
    valid_amounts,
)

A, S, T = ActionAmount, ActionSize, ActionType


def test_table_shapes_and_neutral_only_types():
    assert AMOUNT_VALID.shape == (N_TYPES, N_AMOUNTS) == (20, 5)
    for t in (T.KEEP, T.CUT, T.REORDER, T.SKIP, T.REVERSE, T.REPEAT_PREV, T.SWAP_NEXT):
        assert valid_amounts(t) == (A.NEUTRAL,)
    for t in (T.GAIN, T.EQ_LOW, T.EQ_HIGH):
        assert A.NEUTRAL not in valid_amounts(t)
        with pytest.raises(ValueError, match="invalid for"):
            amount_value(t, A.NEUTRAL)
    assert [amount_value(T.LOOP, a) for a in valid_amounts(T.LOOP)] == [2.0, 3.0, 4.0]
    assert [amount_value(T.JUMP_BACK, a) for a in A] == [4, 8, 16, 32, 64]
    assert amount_value(T.GAIN, A.POS_LARGE) == 6.0
    assert amount_value(T.SPEED_UP, A.POS_LARGE) > 1 > amount_value(T.SPEED_DOWN, A.NEG_LARGE)
    assert amount_value(T.PITCH_DOWN, A.NEG_LARGE) < 0 < amount_value(T.PITCH_UP, A.NEG_LARGE)
    assert is_structural(T.SWAP_NEXT) and not is_structural(T.GAIN)


def _run(n_beats, actions, phase=0):
    state, out = initial_state(n_beats, downbeat_phase=phase), []
    for t, s, a in actions:
        state, segs = step(state, t, s, a)
        out += segs
    return state, out + finish(state)


def test_structural_steps_produce_the_documented_beat_ranges():
    state, segs = _run(
        64,
        [
            (T.KEEP, S.BAR, A.NEUTRAL),  # 0..4
            (T.CUT, S.BAR, A.NEUTRAL),  # 4..8 dropped
            (T.LOOP, S.BAR, A.NEUTRAL),  # 8..12 twice
            (T.REORDER, S.BAR, A.NEUTRAL),  # 12..16 deferred to the end
            (T.JUMP_BACK, S.BAR, A.NEG_LARGE),  # replays 12..16, cursor stays at 16
            (T.SWAP_NEXT, S.BAR, A.NEUTRAL),  # 20..24 then 16..20
            (T.REPEAT_PREV, S.BEAT, A.NEUTRAL),  # last output beat again, consumes 24
            (T.SKIP, S.PHRASE, A.NEUTRAL),  # 25 -> next phrase boundary 32
        ],
    )
    ranges = [(p.type, p.start_beat, p.end_beat, p.repeats, p.from_output) for p in segs]
    assert ranges == [
        (T.KEEP, 0, 4, 1, False),
        (T.LOOP, 8, 12, 2, False),
        (T.JUMP_BACK, 12, 16, 1, False),
        (T.SWAP_NEXT, 20, 24, 1, False),
        (T.SWAP_NEXT, 16, 20, 1, False),
        (T.REPEAT_PREV, 23, 24, 1, True),  # output beats 0..4, 4..12, 12..16, 16..24
        (T.REORDER, 12, 16, 1, False),
    ]
    assert state.cursor == 32
    assert state.n_output_beats == 4 + 8 + 4 + 8 + 1


def test_skip_respects_downbeat_phase_and_clamps_at_the_end():
    state = initial_state(10, downbeat_phase=1)
    state, _ = step(state, T.SKIP, S.BAR, A.NEUTRAL)
    assert state.cursor == 1  # beat 0 is the pickup; the first bar starts on beat 1
    state, _ = step(state, T.SKIP, S.BAR, A.NEUTRAL)
    assert state.cursor == 5
    state, _ = step(state, T.SKIP, S.TWO_PHRASES, A.NEUTRAL)
    assert state.cursor == 10 and state.done


def test_masks_for_jump_swap_repeat_and_sizes():
    state = initial_state(20)
    type_mask, size_mask, amount_mask = action_masks(state)
    assert not type_mask[T.JUMP_BACK]  # nothing behind the cursor
    assert not type_mask[T.REPEAT_PREV]  # no output yet
    assert size_mask[T.KEEP].tolist() == [True, True, True, True, False]  # 32 > 20 beats
    assert size_mask[T.SWAP_NEXT].tolist() == [True, True, True, False, False]  # 2×16 > 20
    assert size_mask[T.SKIP].all()  # clamping is SKIP's meaning
    state, _ = step(state, T.KEEP, S.TWO_BARS, A.NEUTRAL)
    type_mask, _, amount_mask = action_masks(state)
    assert type_mask[T.JUMP_BACK] and amount_mask[T.JUMP_BACK].tolist() == [1, 1, 0, 0, 0]
    state, _ = step(state, T.JUMP_BACK, S.BAR, A.NEG_SMALL)
    assert state.cursor == 8 and not action_masks(state)[0][T.JUMP_BACK]  # no 2 jumps in a row
    with pytest.raises(ValueError, match="invalid action JUMP_BACK"):
        step(state, T.JUMP_BACK, S.BAR, A.NEG_LARGE)


def test_scalar_validity_agrees_with_masks_everywhere():
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(1, 80))
        state = initial_state(n, downbeat_phase=int(rng.integers(4)))
        state, _ = _random_steps(state, rng, int(rng.integers(0, 6)))
        tm, sm, am = action_masks(state)
        full = tm[:, None, None] & sm[:, :, None] & am[:, None, :]
        scalar = np.array(
            [
                [[is_valid(state, t, s, a) for a in range(N_AMOUNTS)] for s in range(N_SIZES)]
                for t in range(N_TYPES)
            ]
        )
        np.testing.assert_array_equal(full, scalar)


def _random_steps(state, rng, max_steps):
    segs = []
    for _ in range(max_steps):
        if state.done:
            break
        tm, sm, am = action_masks(state)
        t = int(rng.choice(np.flatnonzero(tm)))
        s = int(rng.choice(np.flatnonzero(sm[t])))
        a = int(rng.choice(np.flatnonzero(am[t])))
        state, new = step(state, t, s, a)
        segs += new
    return state, segs


def test_random_valid_sequences_terminate_and_stay_inside_the_track():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 300))
        state = initial_state(n, downbeat_phase=int(rng.integers(4)))
        # Every non-jump action advances the cursor by >= 1 and jumps never come twice in a
        # row, so 2 * n steps is a hard bound.
        state, segs = _random_steps(state, rng, 2 * n + 1)
        assert state.done and state.cursor == n
        segs += finish(state)
        out_beats = 0
        for p in segs:
            limit = out_beats if p.from_output else n
            assert 0 <= p.start_beat < p.end_beat <= limit
            out_beats += p.n_beats
        assert out_beats == state.n_output_beats + sum(p.n_beats for p in state.deferred)
        assert not action_masks(state)[0].any()


def test_sizes_table_is_the_4_4_grid():
    assert [SIZE_BEATS[s] for s in S] == [1, 4, 8, 16, 32]
