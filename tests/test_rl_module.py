"""EditorRLModule built from the env's gym spaces: shapes, masks, values, aux losses, state."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule

from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES
from editorbot.envs import spaces as sp
from editorbot.errors import ParameterError
from editorbot.models.distribution import N_INPUTS, AutoregressiveEditDistribution
from editorbot.models.rl_module import (
    AUX_ENERGY_LOGITS,
    AUX_PHRASE_LOGITS,
    AUX_TEMPO_LOGITS,
    EditorRLModule,
    ModuleConfig,
    aux_losses,
)

W, G, B = 64, 5, 6
F_TOK = 12 + sp.N_DYNAMIC  # 12 static channels
CFG = ModuleConfig.tiny()


def _module(
    cfg: ModuleConfig = CFG, seed: int = 0, inference_only: bool = False, **extra: Any
) -> EditorRLModule:
    torch.manual_seed(seed)
    return EditorRLModule(
        observation_space=sp.observation_space(window=W, n_token_features=F_TOK, n_globals=G),
        action_space=sp.action_space(),
        inference_only=inference_only,
        model_config={**dataclasses.asdict(cfg), **extra},
    )


def _batch(seed: int = 0, n: int = B) -> dict[str, Any]:
    """Random observations with sparse masks (KEEP / BEAT / NEUTRAL always valid)."""
    rng = np.random.default_rng(seed)
    type_mask = (rng.random((n, N_TYPES)) < 0.3).astype(np.float32)
    size_mask = (rng.random((n, N_TYPES, N_SIZES)) < 0.4).astype(np.float32)
    amount_mask = (rng.random((n, N_TYPES, N_AMOUNTS)) < 0.4).astype(np.float32)
    type_mask[:, 0], size_mask[:, :, 0], amount_mask[:, :, 2] = 1.0, 1.0, 1.0
    aux = np.stack([rng.integers(0, CFG.n_tempo_bins, n), rng.integers(0, CFG.n_energy_classes, n),
                    rng.integers(0, 2, n)], axis=-1)  # fmt: skip
    obs = {
        sp.OBS_TOKENS: rng.normal(size=(n, W, F_TOK)),
        sp.OBS_GLOBALS: rng.normal(size=(n, G)),
        sp.OBS_TYPE_MASK: type_mask,
        sp.OBS_SIZE_MASK: size_mask,
        sp.OBS_AMOUNT_MASK: amount_mask,
        sp.OBS_AUX_TARGETS: aux,
    }
    return {Columns.OBS: {k: torch.as_tensor(v, dtype=torch.float32) for k, v in obs.items()}}


def test_observation_space_contract() -> None:
    space = sp.observation_space(window=W, n_token_features=F_TOK, n_globals=G)
    assert set(space.spaces) == set(sp.OBS_KEYS)
    assert space[sp.OBS_TOKENS].shape == (W, F_TOK) and sp.cursor_index(W) == 32
    assert space[sp.OBS_SIZE_MASK].shape == (20, 5) == space[sp.OBS_AMOUNT_MASK].shape
    assert space[sp.OBS_AUX_TARGETS].shape == (sp.N_AUX,)
    assert sp.action_space().nvec.tolist() == [20, 5, 5]
    with pytest.raises(ParameterError, match="window=0"):
        sp.observation_space(window=0, n_token_features=F_TOK, n_globals=G)


def test_forward_passes_and_shapes() -> None:
    module, batch = _module(), _batch()
    with torch.no_grad():
        for out in (module.forward_inference(batch), module.forward_exploration(batch)):
            assert out[Columns.ACTION_DIST_INPUTS].shape == (B, N_INPUTS)
            assert Columns.EMBEDDINGS not in out  # not stored per step
        train = module.forward_train(batch)
        values = module.compute_values(batch)
    assert train[Columns.ACTION_DIST_INPUTS].shape == (B, N_INPUTS)
    assert train[Columns.EMBEDDINGS].shape == (B, CFG.hidden)
    assert train[AUX_TEMPO_LOGITS].shape == (B, CFG.n_tempo_bins)
    assert train[AUX_ENERGY_LOGITS].shape == (B, CFG.n_energy_classes)
    assert train[AUX_PHRASE_LOGITS].shape == (B,)
    assert values.shape == (B,)
    # The value head reuses the policy's embedding: passing it gives the same values.
    with torch.no_grad():
        shared = module.compute_values(batch, embeddings=train[Columns.EMBEDDINGS])
    torch.testing.assert_close(shared, values)
    assert module.get_train_action_dist_cls() is AutoregressiveEditDistribution


def test_sampled_and_greedy_actions_respect_the_masks() -> None:
    module, batch = _module(), _batch(1, n=200)
    with torch.no_grad():
        inputs = module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS]
    dist = module.get_exploration_action_dist_cls().from_logits(inputs)
    obs = batch[Columns.OBS]
    for actions in [dist.sample() for _ in range(20)] + [dist.to_deterministic().sample()]:
        t, s, m = actions.unbind(-1)
        rows = torch.arange(len(t))
        assert bool((obs[sp.OBS_TYPE_MASK][rows, t] == 1).all())
        assert bool((obs[sp.OBS_SIZE_MASK][rows, t, s] == 1).all())
        assert bool((obs[sp.OBS_AMOUNT_MASK][rows, t, m] == 1).all())
    logp = dist.logp(dist.sample())
    assert logp.shape == (200,) and bool(torch.isfinite(logp).all())
    assert bool(torch.isfinite(dist.entropy()).all())


def test_losses_backpropagate_into_the_shared_encoder() -> None:
    module, batch = _module(), _batch(2)
    out = module.forward_train(batch)
    dist = AutoregressiveEditDistribution.from_logits(out[Columns.ACTION_DIST_INPUTS])
    losses = aux_losses(out, batch)
    assert set(losses) == {"aux_tempo", "aux_energy", "aux_phrase"}
    values = module.compute_values(batch, embeddings=out[Columns.EMBEDDINGS])
    total = -dist.logp(dist.sample()).mean() - dist.entropy().mean() + values.square().mean()
    (total + sum(losses.values())).backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
    # The untrained heads start near uniform: CE close to log(classes) (±1 nat for init noise).
    assert abs(losses["aux_tempo"].item() - np.log(CFG.n_tempo_bins)) < 1.0


def test_aux_losses_skip_unknown_targets() -> None:
    module, batch = _module(), _batch(3)
    with torch.no_grad():
        out = module.forward_train(batch)
    full = aux_losses(out, batch)
    targets = batch[Columns.OBS][sp.OBS_AUX_TARGETS]
    targets[1:, sp.AUX_TEMPO_BIN] = -1.0  # only row 0 has a tempo target now
    partial = aux_losses(out, batch)
    row0 = torch.nn.functional.cross_entropy(out[AUX_TEMPO_LOGITS][:1], targets[:1, 0].long())
    torch.testing.assert_close(partial["aux_tempo"], row0)
    assert float(partial["aux_tempo"]) != float(full["aux_tempo"])
    targets[:, sp.AUX_PHRASE_BOUNDARY] = -1.0
    assert float(aux_losses(out, batch)["aux_phrase"]) == 0.0
    targets[0, sp.AUX_ENERGY_CLASS] = CFG.n_energy_classes  # one past the last class
    with pytest.raises(ParameterError, match=r"raise ModuleConfig\.n_energy_classes"):
        aux_losses(out, batch)


def test_separate_value_network() -> None:
    module, batch = _module(dataclasses.replace(CFG, separate_value_network=True)), _batch()
    with torch.no_grad():
        emb = module.forward_train(batch)[Columns.EMBEDDINGS]
        values = module.compute_values(batch, embeddings=emb)
    assert values.shape == (B,)
    n_shared = sum(p.numel() for p in _module().parameters())
    assert sum(p.numel() for p in module.parameters()) > n_shared  # a second encoder exists


def test_state_round_trip(tmp_path: Path) -> None:
    module, batch = _module(seed=0), _batch(4)
    other = _module(seed=1)
    with torch.no_grad():
        expected = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
        assert not torch.allclose(other.forward_inference(batch)[Columns.ACTION_DIST_INPUTS],
                                  expected)  # fmt: skip
        other.set_state(module.get_state())
        torch.testing.assert_close(other.forward_inference(batch)[Columns.ACTION_DIST_INPUTS],
                                   expected, rtol=0, atol=0)  # fmt: skip
    module.save_to_path(tmp_path / "module")
    loaded = RLModule.from_checkpoint(tmp_path / "module")
    # RLlib silently falls back to a base RLModule when the class is not importable.
    assert type(loaded) is EditorRLModule
    with torch.no_grad():
        got = loaded.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    torch.testing.assert_close(got, expected, rtol=0, atol=0)  # same weights, same maths


def test_inference_only_copy_acts_like_the_full_module() -> None:
    full, batch = _module(seed=0), _batch(5)
    runner = _module(seed=1, inference_only=True)
    assert sum(p.numel() for p in runner.parameters()) < sum(p.numel() for p in full.parameters())
    state = full.get_state(inference_only=True)
    assert not any(key.startswith("_value_head") for key in state)  # not shipped to runners
    runner.set_state(state)  # raises if the runner misses a key of its own
    with torch.no_grad():
        expected = full.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
        got = runner.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS]
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_model_config_keys() -> None:
    _module(vf_share_layers=False)  # PPO merges this into every model_config: accepted
    with pytest.raises(ParameterError, match="unknown key 'hiden'"):
        _module(hiden=3)
    with pytest.raises(ParameterError, match="not the editing env's"):
        EditorRLModule(observation_space=spaces.Box(0, 1, (3,)), action_space=sp.action_space(),
                       model_config=dataclasses.asdict(CFG))  # fmt: skip
    full = _module(ModuleConfig())  # the defaults build (512 wide, 8 heads, 3 layers of 11)
    assert full._encoder.cfg.kernel_size == 11 and full._encoder.cfg.hidden == 512
    # A static reach past the window's half (3 layers of 33 reach 48 beats) is refused.
    with pytest.raises(ParameterError, match=r"= 48 beats must be below window // 2 = 32"):
        _module(dataclasses.replace(ModuleConfig(), kernel_size=33))
