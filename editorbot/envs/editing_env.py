"""The editing environment: one episode walks a cursor over one raw track's beat grid.

Each step takes a factored action (type, size, amount), advances the edit state
machine of :mod:`editorbot.editing.actions` (the same one the renderer and the alignment use),
and pays the reward of :mod:`editorbot.envs.reward` for the raw beats the action consumed; the
terminal step adds the output-similarity and duration terms. ``step()`` does no file I/O, no
feature extraction and no rendering: it indexes the precomputed :class:`TrackTable` arrays.

Observation (:func:`editorbot.envs.spaces.observation_space`):

- ``tokens`` [W, F + N_CONTEXT + 1 + N_HISTORY + 1]: the static channels (normalised features,
  context channels (:data:`CONTEXT_NAMES`: track-relative beat and bar level, phrase phase),
  an in-track flag), then the dynamic ones: edit-history channels (decided flag, type one-hot,
  size and amount of the action that consumed the beat) and the position relative to the
  cursor (cursor token at ``W // 2``).
- ``track``: the key of the track's static token table (registered once per episode with
  :func:`editorbot.envs.spaces.register_static_track`) and the cursor.
- ``globals`` [N_GLOBALS]: see :data:`GLOBAL_NAMES`.
- the three masks from the state machine, and ``aux_targets`` for the cursor beat.

How to run: ``EditingEnv({"tables": "bc_data/tables"})``, or registered with RLlib through
:func:`editorbot.envs.registration.register`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from editorbot.config import from_dict
from editorbot.editing import actions as sm
from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES
from editorbot.envs import reward as rw
from editorbot.envs import spaces as sp
from editorbot.envs.track_table import TrackTable, collect_output, load_tables, speed_ratio
from editorbot.errors import ParameterError

logger = logging.getLogger(__name__)

N_HISTORY = sp.N_HISTORY
GLOBAL_NAMES = (
    "position",
    "beats_left",
    "beats_left_log",
    "keep_ratio",
    "target_ratio",
    "tempo",
    "output_vs_target",
)
N_GLOBALS = len(GLOBAL_NAMES)
CONTEXT_NAMES = ("level_db", "bar_level_db", "phrase_phase_sin", "phrase_phase_cos")
"""Per-beat context channels: what the editor decides on but the globally normalised features
hide — the beat's and its bar's level relative to the track's median (dB / 10), and the
position in the 4-bar phrase (16 beats from the first downbeat)."""
N_CONTEXT = len(CONTEXT_NAMES)
BEATS_PER_PHRASE = 16
REWARD_TERMS = ("agree_type", "agree_size", "agree_amount", "similarity", "duration")


@dataclass(frozen=True)
class EnvConfig:
    """How the editing environment is built (the ``config`` dict of :class:`EditingEnv`)."""

    window: int = 64
    """[beats] W, token window around the cursor (the encoder's receptive field, ≥ 64)."""
    max_steps_per_beat: float = 2.0
    """[steps / raw beat] the episode is truncated after this many steps per beat."""
    reward: rw.RewardConfig = field(default_factory=rw.RewardConfig)
    """Reward weights."""
    seed: int | None = None
    """[seed] track choice and nothing else (the dynamics are deterministic)."""
    shown_target_ratio: float | None = None
    """[ratio] edit/raw duration ratio the observation shows for every track (None = each
    track's own). ``edit`` knows no human edit of a new track and shows one ratio; training with
    that ratio makes the policy read its cuts from the music. The duration reward still uses
    each track's own."""
    strict_actions: bool = False
    """[flag] raise on a masked-out action instead of replacing it by the nearest valid one
    (gymnasium's checker and RLlib's random warm-up sample unmasked actions)."""


class EditingEnv(gym.Env):
    """Gymnasium environment over precomputed track tables.

    Args:
        config: a dict with ``tables`` (a list of :class:`TrackTable`, a Ray ``ObjectRef`` to
            such a list, or a folder of ``*.npz``) and any :class:`EnvConfig` field (``reward``
            as a nested dict).

    Raises:
        ParameterError: on an unknown key, ``window`` < 64, or no tables.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 (gymnasium declares it an instance attribute)

    _state: sm.EditState
    _cursor: int
    _n_steps: int
    _max_steps: int
    _type_mask: np.ndarray
    _size_mask: np.ndarray
    _amount_mask: np.ndarray
    _episode_terms: dict[str, float]

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        config = dict(config or {})
        self.tables = _resolve_tables(config.pop("tables", None))
        self.config = from_dict(EnvConfig, config, source="EditingEnv config")
        if self.config.window < 64:
            raise ParameterError(f"EditingEnv: window={self.config.window}, need at least 64")
        n_features = self.tables[0].features.shape[1]
        self.n_token_features = n_features + N_CONTEXT + 1 + sp.N_DYNAMIC
        self.observation_space = sp.observation_space(
            window=self.config.window, n_token_features=self.n_token_features, n_globals=N_GLOBALS
        )
        self.action_space = sp.action_space()
        self._history_rows = _history_rows()
        self._relpos = (
            (np.arange(self.config.window, dtype=np.float32) - self.config.window // 2)
            / self.config.window
        )[:, None]
        self._track_rng = np.random.default_rng(self.config.seed)
        self._table: TrackTable = self.tables[0]
        self._static: dict[int, _TrackStatic] = {}

    # -- gymnasium API -------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._track_rng = np.random.default_rng(seed)
        options = options or {}
        index = options.get("track_index")
        if index is None:
            index = int(self._track_rng.integers(len(self.tables)))
        self._start_episode(self.tables[int(index)])
        return self._observation(), {"track": self._table.name}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        t, s, a = int(action[0]), int(action[1]), int(action[2])
        valid = bool(self._type_mask[t] and self._size_mask[t, s] and self._amount_mask[t, a])
        if not valid:
            if self.config.strict_actions:
                raise ParameterError(f"EditingEnv: action {(t, s, a)} is masked out here")
            t, s, a = self._repair(t, s, a)
        start = self._cursor
        self._state, segments = sm.step(self._state, t, s, a)
        self._cursor = int(self._state.cursor)
        self._n_steps += 1
        terms = dict.fromkeys(REWARD_TERMS, 0.0)
        agree = rw.agreement(self._table, start, self._cursor, (t, s, a), self.config.reward)
        terms["agree_type"], terms["agree_size"], terms["agree_amount"] = agree
        self._mark_decided(start, self._cursor, t, s, a)
        self._append_output(segments)
        terminated = self._cursor >= self._table.n_beats
        truncated = not terminated and self._n_steps >= self._max_steps
        if terminated or truncated:
            self._append_output(sm.finish(self._state))
            terms["similarity"], terms["duration"] = self._terminal_terms()
        else:
            self._masks_from_state()
        for key, value in terms.items():
            self._episode_terms[key] += value
        # The terms travel per episode only: a vector env merges every info key of every step.
        info: dict[str, Any] = {"action_repaired": not valid}
        if terminated or truncated:
            info["episode_terms"] = dict(self._episode_terms)
        return self._observation(), float(sum(terms.values())), terminated, truncated, info

    # -- episode bookkeeping -------------------------------------------------------------------

    def _start_episode(self, table: TrackTable) -> None:
        self._table = table
        n = table.n_beats
        static = self._static.get(id(table))
        if static is None:  # once per track: resets stay cheap (episodes are ~15 steps)
            static = self._static[id(table)] = _TrackStatic.build(table, self.config.window)
        if sp.static_track(static.key) is None:  # dropped by the process's table limit
            sp.register_static_track(static.tokens)
        self._track_key, self._static_tokens, self._aux = static.key, static.tokens, static.aux
        # The window is a slice of the padded static table and of this episode's history, so
        # an observation costs one copy; only the history is per episode.
        self._history = np.zeros((n + self.config.window, N_HISTORY), np.float32)
        self._hist0 = self.config.window // 2
        self._state = sm.initial_state(n, downbeat_phase=table.downbeat_phase)
        self._cursor = 0
        self._n_steps = 0
        self._max_steps = max(1, int(self.config.max_steps_per_beat * n))
        self._segments: list[sm.PlannedSegment] = []
        self._out_duration = 0.0
        self._episode_terms = dict.fromkeys(REWARD_TERMS, 0.0)
        self._masks_from_state()

    def _repair(self, t: int, s: int, a: int) -> tuple[int, int, int]:
        """The nearest valid action to a masked one: KEEP for a masked type, the largest valid
        size not above the asked one (else the smallest), NEUTRAL or the first valid amount."""
        if not self._type_mask[t]:
            t = int(sm.ActionType.KEEP)
        sizes = np.flatnonzero(self._size_mask[t])
        if not self._size_mask[t, s]:
            below = sizes[sizes <= s]
            s = int(below[-1] if len(below) else sizes[0])
        if not self._amount_mask[t, a]:
            amounts = np.flatnonzero(self._amount_mask[t])
            neutral = int(sm.ActionAmount.NEUTRAL)
            a = neutral if self._amount_mask[t, neutral] else int(amounts[0])
        return t, s, a

    def _masks_from_state(self) -> None:
        state = self._state
        key = _mask_key(state)
        masks = _MASK_CACHE.get(key)
        if masks is None:
            masks = tuple(np.asarray(m, np.float32) for m in sm.action_masks(state))
            _MASK_CACHE[key] = masks
        self._type_mask, self._size_mask, self._amount_mask = masks

    def _mark_decided(self, start: int, stop: int, t: int, s: int, a: int) -> None:
        if stop > start:
            rows = slice(self._hist0 + start, self._hist0 + stop)
            self._history[rows] = self._history_rows[t, s, a]

    def _append_output(self, segments: list[sm.PlannedSegment]) -> None:
        # Only the duration now (the keep-ratio global); the output map is built once at the end.
        self._segments.extend(segments)
        for seg in segments:
            self._out_duration += seg.n_beats / speed_ratio(seg)

    def _terminal_terms(self) -> tuple[float, float]:
        beats: list[np.ndarray] = []
        types: list[np.ndarray] = []
        collect_output(self._segments, beats, types)
        out_beats = np.concatenate(beats) if beats else np.zeros(0, np.int64)
        out_types = np.concatenate(types) if types else np.zeros(0, np.int64)
        return rw.terminal(
            self._table, out_beats, out_types, self._out_duration, self.config.reward
        )

    @property
    def planned_segments(self) -> list[sm.PlannedSegment]:
        """The output plan so far, in output order once the episode has ended."""
        return list(self._segments)

    def _observation(self) -> dict[str, np.ndarray]:
        table, c, w = self._table, self._cursor, self.config.window
        n = table.n_beats
        tokens = np.concatenate(
            [self._static_tokens[c : c + w], self._history[c : c + w], self._relpos], axis=1
        )
        keep_ratio = self._out_duration / c if c > 0 else 1.0
        ratio = self.config.shown_target_ratio
        ratio = table.target_ratio if ratio is None else ratio
        target_beats = max(ratio * n, 1.0)
        beats_left = n - c
        globals_ = np.array(
            [
                c / n,
                beats_left / n,
                np.log1p(beats_left) / 8.0,  # log(1 + 2980) ≈ 8: a 25-minute track at 120 BPM
                keep_ratio,
                ratio,
                table.tempo_bpm / 120.0,
                self._out_duration / target_beats,
            ],
            np.float32,
        )
        return {
            sp.OBS_TOKENS: tokens,
            sp.OBS_GLOBALS: globals_,
            sp.OBS_TYPE_MASK: self._type_mask.copy(),
            sp.OBS_SIZE_MASK: self._size_mask.copy(),
            sp.OBS_AMOUNT_MASK: self._amount_mask.copy(),
            sp.OBS_TRACK: sp.track_entry(self._track_key, c),
            sp.OBS_AUX_TARGETS: self._aux[min(c, n - 1)].copy(),
        }

    @property
    def masks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The current (type, size, amount) masks, float32 in {0, 1}."""
        return self._type_mask, self._size_mask, self._amount_mask

    @property
    def cursor(self) -> int:
        """[raw beats] the cursor position."""
        return self._cursor


@dataclass(frozen=True, eq=False)
class _TrackStatic:
    """What an episode of one track starts from, built once per track and environment."""

    tokens: np.ndarray
    """[shape=(n + W, F_static)] float32, read-only: features | context | in-track flag of every
    beat, zero-padded by W // 2 beats on each side (row c starts cursor c's window)."""
    key: int
    """The table's key in :func:`editorbot.envs.spaces.register_static_track`."""
    aux: np.ndarray
    """[shape=(n, N_AUX)] float32, read-only: the auxiliary targets of every beat."""

    @classmethod
    def build(cls, table: TrackTable, window: int) -> _TrackStatic:
        n, half = table.n_beats, window // 2
        n_features = table.features.shape[1] + N_CONTEXT
        tokens = np.zeros((n + window, n_features + 1), np.float32)
        tokens[half : half + n, :n_features] = np.concatenate(
            [table.features, context_channels(table)], axis=1
        )
        tokens[half : half + n, n_features] = 1.0
        key = sp.register_static_track(tokens)
        aux = np.zeros((n, sp.N_AUX), np.float32)
        aux[:, sp.AUX_TEMPO_BIN] = table.tempo_bin()
        aux[:, sp.AUX_ENERGY_CLASS] = table.energy_class()
        aux[:, sp.AUX_PHRASE_BOUNDARY] = table.phrase_start
        for array in (tokens, aux):
            array.setflags(write=False)
        return cls(tokens, key, aux)


_MASK_CACHE: dict[tuple[int, int, int, bool], tuple[np.ndarray, ...]] = {}


def _mask_key(state: sm.EditState) -> tuple[int, int, int, bool]:
    """What :func:`editorbot.editing.actions.action_masks` depends on, clipped where larger
    values cannot change a comparison with a size (≤ 32 beats, 64 for SWAP_NEXT's two segments)
    or a jump distance (≤ 64 beats). A test checks the cache against the state machine."""
    left = state.n_beats - state.cursor
    return (
        min(left, 65),
        min(state.n_output_beats, 33),
        min(state.cursor, 65),
        state.last_was_jump,
    )


def context_channels(table: TrackTable) -> np.ndarray:
    """The :data:`CONTEXT_NAMES` channels of a track, (n, N_CONTEXT) float32.

    The demo styles (and human editors) judge a bar's loudness against the rest of the same
    track; a z-score fitted over the training set mixes loud and quiet tracks, so the level is
    also given relative to the track's median, per beat and averaged over the bar.
    """
    n, phase = table.n_beats, table.downbeat_phase
    level = 20.0 * np.log10(np.maximum(table.energy.astype(np.float64), 1e-6))  # [dB]
    level -= np.median(level)
    bar = (np.arange(n) - phase) // 4  # beats before the first downbeat form bar -1
    _, inverse, counts = np.unique(bar, return_inverse=True, return_counts=True)
    bar_level = np.bincount(inverse, weights=level) / counts
    angle = 2.0 * np.pi * ((np.arange(n) - phase) % BEATS_PER_PHRASE) / BEATS_PER_PHRASE
    columns = [level / 10.0, bar_level[inverse] / 10.0, np.sin(angle), np.cos(angle)]
    return np.stack(columns, axis=1).astype(np.float32)


def _history_rows() -> np.ndarray:
    """[shape=(N_TYPES, N_SIZES, N_AMOUNTS, N_HISTORY)] the history channels of every action."""
    rows = np.zeros((N_TYPES, N_SIZES, N_AMOUNTS, N_HISTORY), np.float32)
    rows[..., 0] = 1.0
    for t in range(N_TYPES):
        rows[t, :, :, 1 + t] = 1.0
    rows[..., 1 + N_TYPES] = (np.arange(N_SIZES, dtype=np.float32) / 4.0)[None, :, None]
    rows[..., 2 + N_TYPES] = ((np.arange(N_AMOUNTS, dtype=np.float32) - 2.0) / 2.0)[None, None]
    return rows


def _resolve_tables(tables: Any) -> list[TrackTable]:
    if tables is None:
        raise ParameterError("EditingEnv config: 'tables' is missing (a folder or a list)")
    if isinstance(tables, str | Path):
        loaded, _ = load_tables(tables)
        return loaded
    if type(tables).__name__ == "ObjectRef":  # put once by the driver, read on any node
        import ray

        tables = ray.get(tables)
    tables = list(tables)
    if not tables or not all(isinstance(t, TrackTable) for t in tables):
        raise ParameterError("EditingEnv config: 'tables' must be a folder or TrackTable objects")
    return tables
