"""Trivial editors the learners must beat, as decision lists on a raw track's beat grid.

The trivial ones walk the raw track's tracked beat grid, as the learners do (only the oracle
uses the reference grid).

- ``keep_all``: no decision (the raw track unchanged).
- ``random``: at every cursor a uniformly random valid (type, size, amount), seeded.
- ``majority``: at every cursor the most common (type, size, amount) of the reference labels
  where it is valid, else KEEP of one beat (it sees the evaluation labels' statistics, so it is a
  generous baseline).
- ``oracle``: the reference labels themselves (the upper bound: what rendering the inferred
  edit sounds like; with ``truth/`` labels it reproduces the human edit).

Every list is built by walking the edit state machine (:mod:`editorbot.editing.actions`), so it
is valid under the same masks the learners see.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from editorbot.editing.actions import (
    ActionAmount,
    ActionSize,
    ActionType,
    EditState,
    action_masks,
    initial_state,
    is_valid,
    step,
)
from editorbot.editing.decisions import DecisionList, decisions_from_actions

logger = logging.getLogger(__name__)

BASELINES = ("keep_all", "random", "majority", "oracle")
"""Names of the baselines, in table order."""

_KEEP_BEAT = (int(ActionType.KEEP), int(ActionSize.BEAT), int(ActionAmount.NEUTRAL))


def keep_all(ref: DecisionList) -> DecisionList:
    """No decisions on ``ref``'s grid: the renderer keeps every beat."""
    return _on_grid(ref, np.zeros((0, 3), np.int64), "keep_all")


def random_policy(ref: DecisionList, *, seed: int = 0) -> DecisionList:
    """A uniformly random valid action at every cursor (type, then size, then amount)."""
    rng = np.random.default_rng(seed)

    def choose(state: EditState) -> tuple[int, int, int]:
        type_mask, size_mask, amount_mask = action_masks(state)
        t = int(rng.choice(np.flatnonzero(type_mask)))
        s = int(rng.choice(np.flatnonzero(size_mask[t])))
        return t, s, int(rng.choice(np.flatnonzero(amount_mask[t])))

    return _on_grid(ref, _walk(ref, choose), "random")


def majority_action(refs: Sequence[DecisionList]) -> tuple[int, int, int]:
    """The most common (type, size, amount) over the decisions of ``refs`` (KEEP BEAT if none)."""
    counts = Counter((int(d.type), int(d.size), int(d.amount)) for r in refs for d in r.decisions)
    return counts.most_common(1)[0][0] if counts else _KEEP_BEAT


def majority_policy(ref: DecisionList, action: tuple[int, int, int]) -> DecisionList:
    """``action`` at every cursor where it is valid, else KEEP of one beat."""

    def choose(state: EditState) -> tuple[int, int, int]:
        return action if is_valid(state, *action) else _KEEP_BEAT

    return _on_grid(ref, _walk(ref, choose), "majority")


def baseline_lists(
    ref: DecisionList, grid: DecisionList, *, majority: tuple[int, int, int], seed: int = 0
) -> dict[str, DecisionList]:
    """Every baseline of :data:`BASELINES`, by name.

    Args:
        ref: the reference decisions (the oracle renders them).
        grid: a list whose beat grid the trivial baselines walk: the raw track's tracked beats,
            as the learners see it, so grid errors cost every editor alike.
        majority: the action of the majority baseline (:func:`majority_action`).
        seed: seed of the random baseline.
    """
    return {
        "keep_all": keep_all(grid),
        "random": random_policy(grid, seed=seed),
        "majority": majority_policy(grid, majority),
        "oracle": ref,
    }


def _walk(ref: DecisionList, choose: Callable[[EditState], tuple[int, int, int]]) -> np.ndarray:
    """Actions from ``choose`` until the cursor reaches the end of ``ref``'s grid."""
    assert ref.beat_times is not None
    state = initial_state(len(ref.beat_times), downbeat_phase=ref.downbeat_phase)
    actions = []
    while not state.done:
        action = choose(state)
        actions.append(action)
        state, _ = step(state, *action)
    return np.asarray(actions, np.int64).reshape(-1, 3)


def _on_grid(ref: DecisionList, actions: np.ndarray, name: str) -> DecisionList:
    assert ref.beat_times is not None
    return decisions_from_actions(
        actions,
        n_beats=len(ref.beat_times),
        sample_rate=ref.sample_rate,
        beat_times=ref.beat_times,
        downbeat_phase=ref.downbeat_phase,
        meta={"source": f"baseline:{name}"},
    )
