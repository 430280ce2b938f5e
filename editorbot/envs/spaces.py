"""The observation and action contract between the editing environment and the RLModule.

Pure gymnasium (no Ray): the environment builds its spaces here and the RLModule reads the same
keys, so the two can be written and tested apart.

Observation (a ``gymnasium.spaces.Dict``):

- ``tokens`` [W, F_tok] float32: beat tokens around the cursor; the cursor's token is at index
  ``W // 2``. The first ``F_tok - N_DYNAMIC`` channels are static (normalised beat features,
  context channels (track-relative level, phrase phase) and an in-track flag: the same for a
  beat all episode long), the last :data:`N_DYNAMIC` change as the episode goes
  (:data:`N_HISTORY` edit-history channels, then the position relative to the cursor).
- ``globals`` [G] float32: global scalars (position, beats left, keep ratio, target ratio, ...).
- ``type_mask`` [N_TYPES] in {0, 1}: which types are valid now.
- ``size_mask`` [N_TYPES, N_SIZES] in {0, 1}: valid sizes per type.
- ``amount_mask`` [N_TYPES, N_AMOUNTS] in {0, 1}: valid amounts per type.
- ``track`` [3] float32: (track key high 24 bits, low 24 bits, cursor beat), exact integers. The
  key names the track's static token table (:func:`register_static_track`) in this process, so
  a policy may encode a track's static channels once and reuse them at every step
  (:class:`~editorbot.models.cursor_encoder.TrackCache`); nothing else reads it.
- ``aux_targets`` [n_aux] float32: targets of the auxiliary heads for the cursor beat, in the
  order of :data:`AUX_TARGET_NAMES` (carried so they reach the learner's batch; the policy never
  reads them).

Action: ``MultiDiscrete([N_TYPES, N_SIZES, N_AMOUNTS])`` = (type, size, amount).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

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
OBS_TRACK = "track"

OBS_KEYS = (OBS_TOKENS, OBS_GLOBALS, OBS_TYPE_MASK, OBS_SIZE_MASK, OBS_AMOUNT_MASK, OBS_TRACK,
            OBS_AUX_TARGETS)  # fmt: skip
POLICY_KEYS = (OBS_TOKENS, OBS_GLOBALS, OBS_TYPE_MASK, OBS_SIZE_MASK, OBS_AMOUNT_MASK, OBS_TRACK)
"""The keys the policy reads (all but ``aux_targets``)."""

N_HISTORY = 1 + N_TYPES + 2
"""Edit-history channels per beat: decided flag, type one-hot, size / 4, (amount - 2) / 2."""
N_DYNAMIC = N_HISTORY + 1
"""Channels at the end of each token that change within an episode: history, relative position."""
TRACK_KEY_BITS = 24
"""Bits of the track key in each of the two ``track`` entries (float32 holds 24-bit integers
exactly)."""
MAX_STATIC_TRACKS = 256
"""Static token tables a process keeps (least recently registered dropped first)."""

AUX_TEMPO_BIN = 0
"""Index in ``aux_targets`` of the cursor beat's tempo bin (an integer class stored as float)."""
AUX_ENERGY_CLASS = 1
"""Index in ``aux_targets`` of the cursor beat's energy class (an integer class stored as float)."""
AUX_PHRASE_BOUNDARY = 2
"""Index in ``aux_targets`` of the phrase-boundary flag (1.0 if the cursor beat starts a phrase)."""
AUX_TARGET_NAMES = ("tempo_bin", "energy_class", "phrase_boundary")
N_AUX = len(AUX_TARGET_NAMES)


def n_static_channels(n_token_features: int) -> int:
    """Static channels at the start of a token of ``n_token_features`` channels."""
    return n_token_features - N_DYNAMIC


def cursor_index(window: int) -> int:
    """Index of the cursor's token in a window of ``window`` beats."""
    return window // 2


def observation_space(
    *, window: int, n_token_features: int, n_globals: int, n_aux: int = N_AUX
) -> spaces.Dict:
    """The editing environment's observation space.

    Args:
        window: W, beats in the token window (the cursor is at ``W // 2``).
        n_token_features: F_tok, features per beat token (more than :data:`N_DYNAMIC`).
        n_globals: G, global scalars.
        n_aux: number of auxiliary targets (:data:`N_AUX` by default).

    Returns:
        A ``Dict`` space with the keys in :data:`OBS_KEYS`.

    Raises:
        ParameterError: if a size is not positive.
    """
    if window < 1:
        raise ParameterError(f"observation_space: window={window}, need at least 1")
    if n_token_features <= N_DYNAMIC:
        raise ParameterError(
            f"observation_space: n_token_features={n_token_features}, need more than the "
            f"{N_DYNAMIC} dynamic channels"
        )
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
            OBS_TRACK: spaces.Box(0.0, float(2**TRACK_KEY_BITS), (3,), f32),
            OBS_AUX_TARGETS: spaces.Box(-np.inf, np.inf, (n_aux,), f32),
        }
    )


def action_space() -> spaces.MultiDiscrete:
    """The factored action space: (type, size, amount)."""
    return spaces.MultiDiscrete([N_TYPES, N_SIZES, N_AMOUNTS])


_STATIC_TRACKS: OrderedDict[int, np.ndarray] = OrderedDict()


def register_static_track(static: np.ndarray) -> int:
    """Keep a track's static token table in this process and return its key.

    The key is a 48-bit digest of the table, so the same track gets the same key in every
    process and environment, and two tracks share one only by a 2^-48 chance.

    Args:
        static: [shape=(n + W, F_tok - N_DYNAMIC)] float32, the static channels of every beat of
            the zero-padded track (row ``c`` starts the window of cursor ``c``).

    Returns:
        The key, below 2^48.
    """
    static = np.ascontiguousarray(static, np.float32)
    digest = hashlib.blake2b(static.tobytes(), digest_size=6)
    digest.update(np.asarray(static.shape, np.int64).tobytes())
    key = int.from_bytes(digest.digest(), "big")
    if key in _STATIC_TRACKS:
        _STATIC_TRACKS.move_to_end(key)
    else:
        _STATIC_TRACKS[key] = kept = static.copy()  # the caller's array may change later
        kept.setflags(write=False)
        while len(_STATIC_TRACKS) > MAX_STATIC_TRACKS:
            _STATIC_TRACKS.popitem(last=False)
    return key


def static_track(key: int) -> np.ndarray | None:
    """The static token table registered under ``key`` in this process (read-only), if any."""
    return _STATIC_TRACKS.get(key)


def track_entry(key: int, cursor: int) -> np.ndarray:
    """The ``track`` observation of a key and a cursor: [3] float32."""
    low = (1 << TRACK_KEY_BITS) - 1
    return np.array([key >> TRACK_KEY_BITS, key & low, cursor], np.float32)


def track_key(high: float, low: float) -> int:
    """The key of a ``track`` observation's first two entries."""
    return (int(high) << TRACK_KEY_BITS) | int(low)
