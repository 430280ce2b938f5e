"""The editing environment: gymnasium's checker, determinism, masks, observation contents."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from env_tables import make_table
from gymnasium.utils.env_checker import check_env

from editorbot.editing import actions as sm
from editorbot.envs import spaces as sp
from editorbot.envs.editing_env import N_CONTEXT, N_HISTORY, EditingEnv, context_channels
from editorbot.envs.track_table import TrackTable, load_tables, save_tables
from editorbot.errors import DatasetError, ParameterError


def _env(**config: object) -> EditingEnv:
    return EditingEnv({"tables": [make_table(0), make_table(1, n_phrases=5)], **config})


def _masked_random_action(env: EditingEnv, rng: np.random.Generator) -> tuple[int, int, int]:
    type_mask, size_mask, amount_mask = env.masks
    t = int(rng.choice(np.flatnonzero(type_mask)))
    s = int(rng.choice(np.flatnonzero(size_mask[t])))
    a = int(rng.choice(np.flatnonzero(amount_mask[t])))
    return t, s, a


def test_gymnasium_env_checker_passes() -> None:
    env = _env()
    with warnings.catch_warnings():
        # The contract's token/global boxes are unbounded on purpose (z-scores); the checker
        # warns about infinite bounds, which is not a failure.
        warnings.simplefilter("ignore", UserWarning)
        check_env(env, skip_render_check=True)


def test_same_seed_same_episode() -> None:
    episodes = []
    for _ in range(2):
        env, rng = _env(), np.random.default_rng(7)
        trace = []
        for episode in range(4):  # the seed fixes the track sequence of later resets too
            obs, info = env.reset(seed=3 if episode == 0 else None)
            trace.append((info["track"], obs[sp.OBS_TOKENS].copy(), 0.0))
            done = False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(_masked_random_action(env, rng))
                trace.append((info["track"], obs[sp.OBS_TOKENS].copy(), reward))
                done = terminated or truncated
        episodes.append(trace)
    assert len(episodes[0]) == len(episodes[1]) > 10
    for (name_a, tok_a, r_a), (name_b, tok_b, r_b) in zip(*episodes, strict=True):
        assert name_a == name_b and r_a == r_b  # exact: the dynamics have no randomness
        np.testing.assert_array_equal(tok_a, tok_b)


def test_masks_never_allow_an_invalid_step_and_match_the_state_machine() -> None:
    env, rng = _env(strict_actions=True), np.random.default_rng(0)
    n_checked = 0
    for episode in range(30):
        env.reset(seed=episode)
        done = False
        while not done:
            state = env._state
            expected = sm.action_masks(state)
            for cached, fresh in zip(env.masks, expected, strict=True):
                np.testing.assert_array_equal(cached, fresh.astype(np.float32))
            if n_checked % 7 == 0:  # exhaustive check of all 500 actions on a sample of states
                full = env.masks[0][:, None, None] * env.masks[1][:, :, None]
                full = full * env.masks[2][:, None, :]
                valid = np.array(
                    [
                        [[sm.is_valid(state, t, s, a) for a in range(5)] for s in range(5)]
                        for t in range(20)
                    ]
                )
                np.testing.assert_array_equal(full.astype(bool), valid)
            n_checked += 1
            _, _, terminated, truncated, _ = env.step(_masked_random_action(env, rng))
            done = terminated or truncated
    assert n_checked > 300  # enough states that JUMP_BACK and end-of-track masks were reached


def test_masked_action_is_rejected_when_strict_and_repaired_otherwise() -> None:
    env = _env(strict_actions=True)
    env.reset(seed=0)
    jump = (int(sm.ActionType.JUMP_BACK), 0, 0)  # masked at beat 0: nothing to jump back to
    with pytest.raises(ParameterError, match="masked out"):
        env.step(jump)
    env = _env()
    env.reset(seed=0)
    _, _, _, _, info = env.step(jump)
    assert info["action_repaired"] and env.cursor == 1  # repaired to KEEP BEAT


def test_observation_carries_features_history_and_globals() -> None:
    env = _env()
    obs, _ = env.reset(seed=0, options={"track_index": 0})
    table, w = env.tables[0], env.config.window
    c = sp.cursor_index(w)
    n_features = table.features.shape[1]
    tokens = obs[sp.OBS_TOKENS]
    assert tokens.shape == (w, n_features + N_CONTEXT + 1 + N_HISTORY + 1)
    np.testing.assert_array_equal(tokens[c, :n_features], table.features[0])
    assert not tokens[:c, :n_features].any()  # before the track start: zero padding
    context = tokens[c:, n_features : n_features + N_CONTEXT]
    np.testing.assert_allclose(context[: w - c], context_channels(table)[: w - c])
    assert not tokens[:c, n_features : n_features + N_CONTEXT].any()
    first = tuple(int(x) for x in table.expert_actions[0])
    obs, _, _, _, _ = env.step(first)
    consumed = env.cursor
    tokens = obs[sp.OBS_TOKENS]
    h = n_features + N_CONTEXT + 1  # first history channel (after the in-track flag): decided
    decided = tokens[c - consumed : c, h]
    assert decided.all() and not tokens[c:, h].any()
    assert tokens[c - 1, h + 1 + first[0]] == 1.0  # type one-hot of the action taken
    g = obs[sp.OBS_GLOBALS]
    assert g[0] == pytest.approx(consumed / table.n_beats)  # position
    assert g[4] == pytest.approx(table.target_ratio)


def test_track_entry_names_the_static_table_of_the_window() -> None:
    """The ``track`` observation's key finds a table whose rows ``c .. c + W`` are the static
    channels of cursor c's window, in this process; the same track gets the same key from
    another environment (a digest of the content), another track another key."""
    env, other = _env(), _env()
    obs, _ = env.reset(seed=0, options={"track_index": 0})
    obs, _, _, _, _ = env.step(tuple(int(x) for x in env.tables[0].expert_actions[0]))
    high, low, cursor = obs[sp.OBS_TRACK]
    assert cursor == env.cursor > 0
    table = sp.static_track(sp.track_key(high, low))
    assert table is not None and not table.flags.writeable
    n_static = sp.n_static_channels(env.n_token_features)
    w = env.config.window
    np.testing.assert_array_equal(
        table[env.cursor : env.cursor + w], obs[sp.OBS_TOKENS][:, :n_static]
    )
    same, _ = other.reset(seed=0, options={"track_index": 0})
    assert (same[sp.OBS_TRACK][:2] == obs[sp.OBS_TRACK][:2]).all()
    different, _ = other.reset(seed=0, options={"track_index": 1})
    assert (different[sp.OBS_TRACK][:2] != obs[sp.OBS_TRACK][:2]).any()


def test_bad_config_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(ParameterError, match="window=32"):
        _env(window=32)
    with pytest.raises(ParameterError, match="unknown key 'windw'"):
        _env(windw=64)
    with pytest.raises(ParameterError, match="'tables' is missing"):
        EditingEnv({})
    with pytest.raises(DatasetError, match="no track tables"):
        EditingEnv({"tables": str(tmp_path)})


def test_tables_round_trip_through_a_folder(tmp_path) -> None:
    tables = [make_table(0), make_table(1)]
    save_tables(tmp_path, tables, None)
    loaded, normalizer = load_tables(tmp_path)
    assert normalizer is None and [t.name for t in loaded] == ["track0", "track1"]
    for a, b in zip(tables, loaded, strict=True):
        assert isinstance(b, TrackTable) and b.tempo_bpm == a.tempo_bpm
        np.testing.assert_array_equal(a.features, b.features)
        np.testing.assert_array_equal(a.expert_type, b.expert_type)
    env = EditingEnv({"tables": str(tmp_path)})
    assert len(env.tables) == 2


def test_expert_list_that_takes_a_masked_action_is_a_dataset_error() -> None:
    from editorbot.envs.track_table import replay_expert

    bad = np.array([[int(sm.ActionType.JUMP_BACK), 0, 0]])  # nothing behind the cursor yet
    with pytest.raises(DatasetError, match="song: expert action 0"):
        replay_expert(16, bad, name="song")


def test_context_channels_are_track_relative_level_and_phrase_phase() -> None:
    table = _env().tables[0]
    ctx = context_channels(table)
    level = 20 * np.log10(np.maximum(table.energy, 1e-6))
    # A track-wide gain must not change the context: the editor judges levels within a track.
    louder = dataclasses.replace(table, energy=table.energy * 10.0)
    np.testing.assert_allclose(context_channels(louder), ctx, atol=1e-5)  # float32 rounding
    assert np.median(ctx[:, 0]) == pytest.approx(0.0, abs=1e-6)  # relative to the median
    np.testing.assert_allclose(ctx[:, 0] * 10.0, level - np.median(level), atol=1e-4)
    # Bar level: constant within each 4-beat bar that starts at the downbeat phase.
    p = table.downbeat_phase
    bars = ctx[p : p + 4 * ((table.n_beats - p) // 4), 1].reshape(-1, 4)
    np.testing.assert_allclose(bars, bars[:, :1].repeat(4, axis=1), atol=1e-6)
    # Phrase phase: the angle is 0 (sin 0, cos 1) every 16 beats from the first downbeat.
    np.testing.assert_allclose(ctx[p::16, 2:], [[0.0, 1.0]] * len(ctx[p::16]), atol=1e-6)


def test_a_track_played_again_starts_from_an_empty_history() -> None:
    """The static part of a track is built once per environment and shared by its episodes, so
    an episode's edits must not leak into the next one of the same track: its first
    observation is the first episode's, exactly (edit-history channels all zero)."""
    env, rng = _env(), np.random.default_rng(3)
    first, _ = env.reset(seed=0, options={"track_index": 0})
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(_masked_random_action(env, rng))
        done = terminated or truncated
    again, _ = env.reset(options={"track_index": 0})
    n_static = sp.n_static_channels(env.n_token_features)
    assert not again[sp.OBS_TOKENS][:, n_static : n_static + N_HISTORY].any()
    for key in sp.POLICY_KEYS:
        np.testing.assert_array_equal(first[key], again[key])


def test_a_track_dropped_from_the_process_table_is_registered_again_at_reset() -> None:
    """The process keeps at most ``MAX_STATIC_TRACKS`` static tables; an environment whose
    track was dropped (a long run over many tracks) registers it again when it next plays it,
    so the policy's per-track cache keeps finding it."""
    env = _env()
    obs, _ = env.reset(seed=0, options={"track_index": 0})
    key = sp.track_key(*obs[sp.OBS_TRACK][:2])
    filler = np.zeros((70, 4), np.float32)
    for i in range(sp.MAX_STATIC_TRACKS):
        filler[0, 0] = i
        sp.register_static_track(filler)
    assert sp.static_track(key) is None
    env.reset(options={"track_index": 0})
    assert sp.static_track(key) is not None
