"""BC pretraining inside PPO's learners (``training/bc_learner.py``) on the session's Ray.

One remote CPU learner must give the BC start a driver-side fit gives with the same seed (the
run's results do not depend on where BC ran); two learners must fit different expert rows and
still end with the same weights (their gradients are averaged).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CONFIG = Path(__file__).resolve().parents[1] / "tune_configs" / "ppo_debug.yaml"

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def run(tiny_bc_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The debug config, its split of the tiny data (1 training, 1 validation track), the
    expert arrays and the env config, as ``run_rl`` builds them."""
    from editorbot.training.bc_data import load_expert_arrays
    from editorbot.training.ppo import load_run_config
    from editorbot.training.rl_train import split_tracks

    cfg = load_run_config(CONFIG)
    split = split_tracks(tiny_bc_dir, tmp_path_factory.mktemp("split"), cfg)
    return {"cfg": cfg, "split": split,
            "expert": load_expert_arrays(split.train_dir / "episodes")}  # fmt: skip


def _driver_fit(run: dict[str, Any], env_config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """BC as ``rl_train`` ran it in the driver before it moved into the learners."""
    import torch

    from editorbot.envs.editing_env import EditingEnv
    from editorbot.training.bc_fit import build_module, fit_bc
    from editorbot.training.rl_train import _agreements

    cfg, split = run["cfg"], run["split"]
    env = EditingEnv({**split.env, "tables": split.train})
    torch.manual_seed(cfg.seed)
    module = build_module(cfg.module, env.observation_space, env.action_space)
    val_only = dataclasses.replace(split, test=[])
    expert = run["expert"]

    def held_out(m: Any) -> float:
        return float(_agreements(m, val_only, env_config)["val_type_agreement"])

    fit = fit_bc(module, expert.obs, expert.actions, cfg.bc, weights=expert.weights,
                 aux_weight=cfg.ppo.aux_weight, seed=cfg.seed, evaluate=held_out)  # fmt: skip
    return module, fit


def _on_learners(run: dict[str, Any], num_learners: int) -> tuple[list[Any], Any, list[str]]:
    """(per-learner BC results, the env runner's module, a digest of each learner's weights)."""
    import ray

    from editorbot.training.bc_learner import (
        learner_values,
        pretrain_on_learners,
        weights_digest,
    )
    from editorbot.training.ppo import ppo_config
    from editorbot.training.rl_train import _edit_target_ratio

    cfg, split = run["cfg"], run["split"]
    env_config = {**split.env, "tables": ray.put(split.train), "seed": cfg.seed}
    expert = ray.put(run["expert"])
    settings = dataclasses.replace(cfg.ppo, num_learners=num_learners)
    algo = ppo_config(settings, env_config=env_config, module=cfg.module, expert=expert,
                      seed=cfg.seed).build_algo()  # fmt: skip
    try:
        results = pretrain_on_learners(
            algo, cfg, expert=expert, val_tables=ray.put(split.val), env_config=env_config,
            target_ratio=_edit_target_ratio(split.train),
        )  # fmt: skip
        digests = learner_values(algo.learner_group.foreach_learner(weights_digest))
        runner_state = algo.get_module().state_dict()
    finally:
        algo.stop()
    return results, runner_state, digests


@pytest.mark.timeout(600)
def test_bc_on_one_remote_learner_gives_the_driver_fits_start(
    ray_session: Any, run: dict[str, Any]
) -> None:
    import ray

    results, runner_state, _ = _on_learners(run, num_learners=1)
    (result,) = results
    assert result.device == "cpu" and result.rows == len(run["expert"])
    env_config = {**run["split"].env, "tables": ray.put(run["split"].train), "seed": 0}
    module, fit = _driver_fit(run, env_config)
    assert (result.fit["best_epoch"], result.fit["best_score"]) == (
        fit["best_epoch"], fit["best_score"]
    )  # fmt: skip
    expected = module.state_dict()
    assert result.state is not None and sorted(result.state) == sorted(expected)
    # Same seed, same ops, one torch thread in both processes: the weights agree to float32
    # rounding (1e-6 absolute on weights of order 0.1-1 allows a different summation order).
    for key, value in expected.items():
        np.testing.assert_allclose(result.state[key], value.numpy(), rtol=0, atol=1e-6, err_msg=key)
    # The env runners sample with the BC policy (their inference-only copy of it).
    for key, value in runner_state.items():
        np.testing.assert_allclose(value.numpy(), result.state[key], rtol=0, atol=0, err_msg=key)


@pytest.mark.timeout(600)
def test_two_learners_fit_different_expert_rows_and_keep_the_same_weights(
    ray_session: Any, run: dict[str, Any]
) -> None:
    results, runner_state, digests = _on_learners(run, num_learners=2)
    n = len(run["expert"])
    assert [(r.rank, r.world) for r in results] == [(0, 2), (1, 2)]
    assert [r.rows for r in results] == [n // 2, n // 2]  # equal shards: steps pair up
    assert results[0].rows_digest != results[1].rows_digest  # different rows
    assert len(set(digests)) == 1  # averaged gradients: identical weights on both learners
    assert results[0].state is not None and results[1].state is None
    for key, value in runner_state.items():
        np.testing.assert_allclose(value.numpy(), results[0].state[key], rtol=0, atol=0)


def test_shards_split_the_rows_disjointly_and_one_learner_keeps_all_in_order() -> None:
    from editorbot.training.bc_learner import shard_rows

    assert shard_rows(7, 0, 1, seed=3).tolist() == list(range(7))
    a, b = shard_rows(101, 0, 2, seed=3), shard_rows(101, 1, 2, seed=3)
    assert len(a) == len(b) == 50 and not set(a) & set(b)
    assert shard_rows(101, 0, 2, seed=3).tolist() == a.tolist()  # deterministic per seed
