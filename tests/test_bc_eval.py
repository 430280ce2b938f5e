"""``tune_configs/bc_eval.yaml``: the honest BC-alone measurement's config loads and its module
fits expert steps with in-memory BC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES
from editorbot.envs import spaces as sp
from editorbot.training.bc_fit import build_module, fit_bc
from editorbot.training.ppo import BCSettings, load_run_config

CONFIG = Path(__file__).resolve().parents[1] / "tune_configs" / "bc_eval.yaml"
N_STEPS = 48
"""[steps] synthetic expert steps (a few tracks' worth of the radio style's ~10 per track)."""
N_TOKEN_FEATURES, N_GLOBALS = 12 + sp.N_DYNAMIC, 5  # 12 static channels


def test_bc_eval_holds_out_test_tracks_and_uses_in_memory_bc() -> None:
    cfg = load_run_config(CONFIG)
    assert cfg.bc.epochs > 0, "bc_eval.yaml measures BC pretraining: it must run"
    assert 0 < cfg.bc.eval_every <= cfg.bc.epochs
    assert cfg.validation_fraction > 0 and cfg.test_fraction > 0
    # 128 demo tracks (the documented command) must leave >= 12 test songs, as measured.
    assert round(cfg.test_fraction * 128) >= 12


def _expert(window: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Random observations with every action allowed, and random expert actions."""
    rng = np.random.default_rng(seed)
    obs = {
        sp.OBS_TOKENS: rng.normal(size=(N_STEPS, window, N_TOKEN_FEATURES)),
        sp.OBS_GLOBALS: rng.normal(size=(N_STEPS, N_GLOBALS)),
        sp.OBS_TYPE_MASK: np.ones((N_STEPS, N_TYPES)),
        sp.OBS_SIZE_MASK: np.ones((N_STEPS, N_TYPES, N_SIZES)),
        sp.OBS_AMOUNT_MASK: np.ones((N_STEPS, N_TYPES, N_AMOUNTS)),
        sp.OBS_AUX_TARGETS: np.zeros((N_STEPS, 3)),
    }
    actions = np.stack([rng.integers(0, n, N_STEPS) for n in (N_TYPES, N_SIZES, N_AMOUNTS)], 1)
    return {k: v.astype(np.float32) for k, v in obs.items()}, actions


@pytest.mark.slow
def test_bc_eval_module_memorises_expert_steps() -> None:
    import torch

    cfg = load_run_config(CONFIG)
    window = int(cfg.env["window"])
    space = sp.observation_space(window=window, n_token_features=N_TOKEN_FEATURES,
                                 n_globals=N_GLOBALS)  # fmt: skip
    torch.manual_seed(0)
    module = build_module(cfg.module, space, sp.action_space())
    obs, actions = _expert(window)
    settings = BCSettings(epochs=60, lr=cfg.bc.lr, train_batch_size=16)
    fit = fit_bc(module, obs, actions, settings, aux_weight=0.0)
    # A uniform policy over 20 × 5 × 5 actions scores log(500) ≈ 6.2 nats; a module that can
    # fit BC memorises 48 random labelled steps in 60 epochs to well under a tenth of that.
    assert fit["loss"] < 0.1 * np.log(N_TYPES * N_SIZES * N_AMOUNTS)
