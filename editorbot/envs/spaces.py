"""The observation and action contract between the editing environment and the RLModule.

Pure gymnasium (no Ray): the environment builds its spaces here and the RLModule reads the same
keys, so the two can be written and tested apart.

Observation (a ``gymnasium.spaces.Dict``):

- ``tokens`` [W, F_tok] float32: beat tokens around the cursor (normalised beat features +
  context channels (track-relative level, phrase phase) + edit-history channels + relative
  position); the cursor's token is at index ``W // 2``.
- ``globals`` [G] float32: global scalars (position, beats left, keep ratio, target ratio, ...).
- ``type_mask`` [N_TYPES] in {0, 1}: which types are valid now.
- ``size_mask`` [N_TYPES, N_SIZES] in {0, 1}: valid sizes per type.
- ``amount_mask`` [N_TYPES, N_AMOUNTS] in {0, 1}: valid amounts per type.
- ``aux_targets`` [n_aux] float32: targets of the auxiliary heads for the cursor beat, in the
  order of :data:`AUX_TARGET_NAMES` (carried so they reach the learner's batch; the policy never
  reads them).

Action: ``MultiDiscrete([N_TYPES, N_SIZES, N_AMOUNTS])`` = (type, size, amount).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES
from editorbot.errors import ParameterError

OBS_TOKENS = "tokens"
OBS_GLOBALS = "globals"
OBS_TYPE_MASK = "type_mask"
OBS_SIZE_MASK = "size_mask"
OBS_AMOUNT_MASK = "amount_mask"
OBS_AUX_TARGETS = "aux_targets"

OBS_KEYS = (OBS_TOKENS, OBS_GLOBALS, OBS_TYPE_MASK, OBS_SIZE_MASK, OBS_AMOUNT_MASK, OBS_AUX_TARGETS)

AUX_TEMPO_BIN = 0
"""Index in ``aux_targets`` of the cursor beat's tempo bin (an integer class stored as float)."""
AUX_ENERGY_CLASS = 1
"""Index in ``aux_targets`` of the cursor beat's energy class (an integer class stored as float)."""
AUX_PHRASE_BOUNDARY = 2
"""Index in ``aux_targets`` of the phrase-boundary flag (1.0 if the cursor beat starts a phrase)."""
AUX_TARGET_NAMES = ("tempo_bin", "energy_class", "phrase_boundary")
N_AUX = len(AUX_TARGET_NAMES)


def cursor_index(window: int) -> int:
    """Index of the cursor's token in a window of ``window`` beats."""
    return window // 2


def observation_space(
    *, window: int, n_token_features: int, n_globals: int, n_aux: int = N_AUX
) -> spaces.Dict:
    """The editing environment's observation space.

    Args:
        window: W, beats in the token window (the cursor is at ``W // 2``).
        n_token_features: F_tok, features per beat token.
        n_globals: G, global scalars.
        n_aux: number of auxiliary targets (:data:`N_AUX` by default).

    Returns:
        A ``Dict`` space with the keys in :data:`OBS_KEYS`.

    Raises:
        ParameterError: if a size is not positive.
    """
    for name, value in (("window", window), ("n_token_features", n_token_features)):
        if value < 1:
            raise ParameterError(f"observation_space: {name}={value}, need at least 1")
    for name, value in (("n_globals", n_globals), ("n_aux", n_aux)):
        if value < 0:
            raise ParameterError(f"observation_space: {name}={value}, need at least 0")
    f32 = np.float32
    return spaces.Dict(
        {
            OBS_TOKENS: spaces.Box(-np.inf, np.inf, (window, n_token_features), f32),
            OBS_GLOBALS: spaces.Box(-np.inf, np.inf, (n_globals,), f32),
            OBS_TYPE_MASK: spaces.Box(0.0, 1.0, (N_TYPES,), f32),
            OBS_SIZE_MASK: spaces.Box(0.0, 1.0, (N_TYPES, N_SIZES), f32),
            OBS_AMOUNT_MASK: spaces.Box(0.0, 1.0, (N_TYPES, N_AMOUNTS), f32),
            OBS_AUX_TARGETS: spaces.Box(-np.inf, np.inf, (n_aux,), f32),
        }
    )


def action_space() -> spaces.MultiDiscrete:
    """The factored action space: (type, size, amount)."""
    return spaces.MultiDiscrete([N_TYPES, N_SIZES, N_AMOUNTS])
