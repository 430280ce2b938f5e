"""Label confidence weights the agreement reward and BC: a labeller's guess counts for less
than a reading it is sure of, and true decisions (confidence 1) train as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from env_tables import make_table

from editorbot.envs.editing_env import EditingEnv
from editorbot.envs.track_table import FeatureNormalizer, TrackTable, uniform_confidence
from editorbot.training import bc_data


def _expert_episode_terms(table: TrackTable) -> dict[str, float]:
    env = EditingEnv({"tables": [table], "window": 64})
    env.reset(seed=0, options={"track_index": 0})
    info: dict = {}
    for action in table.expert_actions:
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return info["episode_terms"]


def test_reward_pays_each_matching_beat_its_label_confidence() -> None:
    sure, unsure = make_table(3), make_table(3, confidence=0.25)
    # Every other action at 0.25: the beats they consume weigh a quarter.
    assert sure.expert_weight.min() == 1.0
    assert set(np.unique(unsure.expert_weight).tolist()) == {0.25, 1.0}
    full = _expert_episode_terms(sure)["agree_type"]
    part = _expert_episode_terms(unsure)["agree_type"]
    assert full == pytest.approx(1.0)  # the expert matches every beat of true decisions
    # The expert still matches every beat, each paid its weight (float64 sums: 1e-9).
    assert part == pytest.approx(float(unsure.expert_weight.mean()), abs=1e-9)
    assert part < 0.9
    assert _expert_episode_terms(uniform_confidence(unsure))["agree_type"] == pytest.approx(1.0)


def test_confidence_travels_through_tables_and_episodes(tmp_path: Path) -> None:
    tables = [make_table(0, confidence=0.5), make_table(1)]
    normalizer = FeatureNormalizer.fit([t.features for t in tables])
    bc_data.write_bc_data(tmp_path / "bc", tables, normalizer, env_config={"window": 64})
    again = TrackTable.load(tmp_path / "bc" / bc_data.TABLES_DIR / "track0.npz")
    np.testing.assert_array_equal(again.expert_confidence, tables[0].expert_confidence)
    np.testing.assert_array_equal(again.expert_weight, tables[0].expert_weight)

    steps = bc_data.load_expert_arrays(tmp_path / "bc" / bc_data.EPISODES_DIR)
    conf = np.concatenate([t.expert_confidence for t in tables])  # files in name order
    np.testing.assert_allclose(steps.weights, conf / conf.mean(), rtol=1e-6)  # float32
    assert steps.weights.mean() == pytest.approx(1.0, rel=1e-6)

    # An episode file from before the column existed reads as confidence 1.
    path = tmp_path / "bc" / bc_data.EPISODES_DIR / "track0.parquet"
    table = pq.read_table(path)
    pq.write_table(table.drop(["weights"]).replace_schema_metadata(table.schema.metadata), path)
    old = bc_data.load_expert_arrays(tmp_path / "bc" / bc_data.EPISODES_DIR)
    np.testing.assert_array_equal(old.weights, np.ones(len(old), np.float32))


def _keep_probability(weights: tuple[float, float]) -> float:
    """BC on the same observations labelled KEEP BAR (weight ``weights[0]``) and CUT BAR
    (``weights[1]``): the fitted policy's mean P(KEEP BAR) / (P(KEEP BAR) + P(CUT BAR)) there."""
    import torch
    from ray.rllib.core.columns import Columns

    from editorbot.editing.actions import ActionType
    from editorbot.models.rl_module import ModuleConfig
    from editorbot.training.bc_fit import build_module, fit_bc
    from editorbot.training.ppo import BCSettings

    table = make_table(5)
    env = EditingEnv({"tables": [table], "window": 64})
    steps = [s for s in bc_data.replay(env, 0) if s["actions"][0] == int(ActionType.KEEP)]
    assert len(steps) >= 8  # the loud phrases are kept bar by bar
    obs = {
        k: np.stack([np.asarray(s["obs"][k], np.float32) for s in steps]) for k in steps[0]["obs"]
    }
    keep = np.asarray([s["actions"] for s in steps], np.int64)
    cut = keep.copy()
    cut[:, 0] = int(ActionType.CUT)  # allowed wherever KEEP BAR is (both cover one bar)
    both = {k: np.concatenate([v, v]) for k, v in obs.items()}
    w = np.repeat(np.asarray(weights, np.float32), len(steps))
    torch.manual_seed(0)
    module = build_module(ModuleConfig.tiny(), env.observation_space, env.action_space)
    settings = BCSettings(epochs=150, lr=3e-3, train_batch_size=16)
    fit_bc(module, both, np.concatenate([keep, cut]), settings, aux_weight=0.0, weights=w)
    with torch.no_grad():
        batch = {Columns.OBS: {k: torch.from_numpy(v) for k, v in obs.items()}}
        out = module.forward_train(batch)
        dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        p_keep = dist.logp(torch.from_numpy(keep)).exp()
        p_cut = dist.logp(torch.from_numpy(cut)).exp()
    return float((p_keep / (p_keep + p_cut)).mean())


@pytest.mark.slow
def test_bc_follows_the_confident_label() -> None:
    # Same observations, two labels. The weighted NLL's optimum for the confident label is
    # w1 / (w1 + w2): 0.8 at weights 1 : 0.25, 0.5 at equal weights. The tiny module reaches it
    # on these 8 observations in 150 epochs (0.79999 and 0.49993 seen); 0.03 is room for the
    # optimiser, far less than the 0.3 between the two cases.
    assert _keep_probability((1.0, 0.25)) == pytest.approx(0.8, abs=0.03)
    assert _keep_probability((1.0, 1.0)) == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_run_config_decides_whether_confidence_weighs(tmp_path: Path, weighted: bool) -> None:
    from editorbot.training.ppo import RLRunConfig
    from editorbot.training.rl_train import _split_tables

    tables = [make_table(i, confidence=0.5) for i in range(3)]
    normalizer = FeatureNormalizer.fit([t.features for t in tables])
    cfg = RLRunConfig(env={"window": 64}, label_confidence=weighted, test_fraction=0.0)
    split = _split_tables(tables, normalizer, tmp_path, cfg)
    weights = bc_data.load_expert_arrays(split.train_dir / bc_data.EPISODES_DIR).weights
    # Every other action at 0.5: weighted, the steps differ (0.5 and 1 over their mean);
    # off (the default), every step weighs 1 and every expert beat pays in full.
    assert (weights.min() < weights.max()) == weighted
    assert all((t.expert_weight.min() < 1.0) == weighted for t in split.train + split.val)
