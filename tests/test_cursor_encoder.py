"""The cursor encoder's cached path (a track's static beats encoded once) against its uncached
forward (each step's window encoded alone): the same logits, values and auxiliary logits on
observations of real episodes; the cache follows weight changes and falls back when it must."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from env_tables import make_table
from ray.rllib.core.columns import Columns

from editorbot.envs import spaces as sp
from editorbot.envs.editing_env import EditingEnv
from editorbot.errors import ParameterError
from editorbot.models.cursor_encoder import CursorEncoder, TrackCache, cursor_radius, static_reach
from editorbot.models.rl_module import (
    AUX_ENERGY_LOGITS,
    AUX_PHRASE_LOGITS,
    AUX_TEMPO_LOGITS,
    EditorRLModule,
    ModuleConfig,
)

TOL = 1e-5
"""Largest |Δ| allowed between the two paths: they do the same float32 arithmetic on matrices
of other shapes (a track's chunks in one batch against one window per step), which rounds
differently (observed ≤ 4e-7 for the 512-wide default; the logits are O(1))."""

CONFIGS = {
    "tiny": ModuleConfig.tiny(),
    "compact": ModuleConfig.compact(),
    "dilated": dataclasses.replace(ModuleConfig.tiny(), layers=2, kernel_size=5, dilation=3),
}


@pytest.fixture(scope="module")
def env() -> EditingEnv:
    return EditingEnv({"tables": [make_table(0), make_table(1, n_phrases=12)]})


def _episode_observations(env: EditingEnv, seed: int) -> list[dict[str, np.ndarray]]:
    """Every observation of one episode per track (the terminal one included), under random
    valid actions that favour short ones, so the cursor visits most beats."""
    rng = np.random.default_rng(seed)
    observations = []
    for track in range(len(env.tables)):
        obs, _ = env.reset(seed=seed, options={"track_index": track})
        done = False
        while not done:
            observations.append(obs)
            type_mask, size_mask, amount_mask = env.masks
            t = int(rng.choice(np.flatnonzero(type_mask))) if rng.random() < 0.3 else 0
            s = (
                int(np.flatnonzero(size_mask[t])[0])
                if rng.random() < 0.8
                else int(rng.choice(np.flatnonzero(size_mask[t])))
            )
            a = int(rng.choice(np.flatnonzero(amount_mask[t])))
            obs, _, terminated, truncated, _ = env.step((t, s, a))
            done = terminated or truncated
        observations.append(obs)
    return observations


def _batch(observations: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """The observations stacked, with every action allowed (masked logits are -3.4e38, whose
    rounding would hide any difference)."""
    obs = {k: torch.from_numpy(np.stack([o[k] for o in observations])) for k in sp.OBS_KEYS}
    for key in (sp.OBS_TYPE_MASK, sp.OBS_SIZE_MASK, sp.OBS_AMOUNT_MASK):
        obs[key] = torch.ones_like(obs[key])
    return obs


def _module(env: EditingEnv, cfg: ModuleConfig) -> EditorRLModule:
    torch.manual_seed(0)
    module = EditorRLModule(
        observation_space=env.observation_space,
        action_space=env.action_space,
        model_config=dataclasses.asdict(cfg),
    )
    return module.eval()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_cached_forward_equals_the_uncached_one_for_every_head(env: EditingEnv, name: str) -> None:
    module = _module(env, CONFIGS[name])
    observations = _episode_observations(env, seed=1)
    cursors = {int(o[sp.OBS_TRACK][2]) for o in observations}
    assert len(observations) > 100 and len(cursors) > 100  # most beats of both tracks visited
    obs = _batch(observations)
    net = module.policy_net
    with torch.no_grad():
        train = module.forward_train({Columns.OBS: obs})  # uncached, as the learner computes
        values = module.compute_values({Columns.OBS: obs})
        cached_emb = net.encode(obs, reuse=True)
        assert net._track_cache._tables  # the cache was used, not the fallback
        cached = {
            "policy": module._forward({Columns.OBS: obs})[Columns.ACTION_DIST_INPUTS],
            "value": module._value_head(cached_emb).squeeze(-1),
            "tempo": module._tempo_head(cached_emb),
            "energy": module._energy_head(cached_emb),
            "phrase": module._phrase_head(cached_emb).squeeze(-1),
        }
    uncached = {
        "policy": train[Columns.ACTION_DIST_INPUTS],  # type | size per type | amount per pair
        "value": values,
        "tempo": train[AUX_TEMPO_LOGITS],
        "energy": train[AUX_ENERGY_LOGITS],
        "phrase": train[AUX_PHRASE_LOGITS],
    }
    for head, expected in uncached.items():
        assert float((cached[head] - expected).abs().max()) <= TOL, head
    assert float(train[Columns.ACTION_DIST_INPUTS].std()) > 0.01  # not a trivially equal output


@pytest.mark.parametrize("name", list(CONFIGS))
def test_batch_rows_encode_each_chunk_once_and_equal_each_window_alone(
    env: EditingEnv, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The learner's path (a batch's chunks of each track encoded once) against each step's
    window encoded alone, on a shuffled batch of real episodes' steps."""
    encoder = _module(env, CONFIGS[name]).policy_net.encoder
    observations = _episode_observations(env, seed=3)
    order = np.random.default_rng(0).permutation(len(observations))
    obs = _batch([observations[i] for i in order])
    with torch.no_grad():
        alone = encoder.step_rows(obs[sp.OBS_TOKENS])
        with monkeypatch.context() as m:  # the shared path, not the fallback to step_rows
            m.setattr(encoder, "step_rows", None)
            shared = encoder.batch_rows(obs[sp.OBS_TOKENS], obs[sp.OBS_TRACK])
    assert float((shared - alone).abs().max()) <= TOL
    few = _batch([observations[i] for i in order[:3]])  # 3 scattered steps: each alone
    with torch.no_grad():
        rows = encoder.batch_rows(few[sp.OBS_TOKENS], few[sp.OBS_TRACK])
    torch.testing.assert_close(rows, encoder.step_rows(few[sp.OBS_TOKENS]), rtol=0, atol=0)


def test_the_step_reads_only_the_beats_of_its_reach(env: EditingEnv) -> None:
    """A static beat just inside ``radius + reach`` of the cursor changes the embedding; one
    just outside does not (what makes the track-wide encoding exact)."""
    cfg = CONFIGS["tiny"]
    encoder = _module(env, cfg).policy_net.encoder
    W, F_tok = env.observation_space[sp.OBS_TOKENS].shape
    reach = cursor_radius(encoder.cfg) + static_reach(encoder.cfg)
    tokens = torch.randn(1, W, F_tok)
    centre = sp.cursor_index(W)
    with torch.no_grad():
        base = encoder(tokens, torch.zeros(1, encoder.cfg.n_globals))
        for beat, moves in ((centre - reach, True), (centre - reach - 1, False)):
            changed = tokens.clone()
            changed[0, beat, 0] += 1.0
            delta = float(
                (encoder(changed, torch.zeros(1, encoder.cfg.n_globals)) - base).abs().max()
            )
            assert (delta > 1e-4) == moves, (beat, delta)


def test_cache_follows_weight_changes_and_falls_back_when_it_must(env: EditingEnv) -> None:
    net = _module(env, CONFIGS["tiny"]).policy_net
    obs = _batch(_episode_observations(env, seed=2)[:50])
    with torch.no_grad():
        net.encode(obs, reuse=True)  # fills the cache
        net.encoder.static_encoder.input_proj.weight.mul_(1.5)  # in place: the cache is stale
        fresh = net.encode(obs)
        assert float((net.encode(obs, reuse=True) - fresh).abs().max()) <= TOL
        net.load_state_dict({k: v * 0.9 for k, v in net.state_dict().items()})
        fresh = net.encode(obs)
        assert float((net.encode(obs, reuse=True) - fresh).abs().max()) <= TOL
        unknown = {**obs, sp.OBS_TRACK: obs[sp.OBS_TRACK] + torch.tensor([1.0, 0.0, 0.0])}
        torch.testing.assert_close(net.encode(unknown, reuse=True), fresh)  # not registered
    emb = net.encode(obs, reuse=True)  # with autograd: the uncached forward, which backpropagates
    emb.sum().backward()
    assert net.encoder.static_encoder.input_proj.weight.grad is not None


def test_a_full_cache_drops_other_tracks_never_the_batchs(env: EditingEnv) -> None:
    net = _module(env, CONFIGS["tiny"]).policy_net
    cache = TrackCache(net.encoder, max_bytes=1)  # over budget after every new track
    observations = _episode_observations(env, seed=4)
    by_track: dict[float, list[dict[str, np.ndarray]]] = {}
    for o in observations:
        by_track.setdefault(float(o[sp.OBS_TRACK][1]), []).append(o)
    first, second = (_batch(v[:5]) for v in by_track.values())
    with torch.no_grad():
        for obs in (first, second, first):
            rows = cache.step_rows(obs[sp.OBS_TRACK])
            assert rows is not None and len(cache._tables) == 1  # only this batch's track
            assert float((rows - net.encoder.step_rows(obs[sp.OBS_TOKENS])).abs().max()) <= TOL


def test_a_reach_past_the_window_is_refused(env: EditingEnv) -> None:
    W, F_tok = env.observation_space[sp.OBS_TOKENS].shape
    cfg = dataclasses.replace(ModuleConfig.compact(), kernel_size=33)  # 2 layers reach 32 beats
    enc = cfg.encoder_config(window=W, n_token_features=F_tok, n_globals=4)
    with pytest.raises(ParameterError, match="= 32 beats must be below window // 2 = 32"):
        CursorEncoder(enc)
