"""Expert replay → offline BC data, then BC + PPO on a real local Ray, then checkpoint → edit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from editorbot.cli import main as cli
from editorbot.editing.decisions import DecisionList

CONFIG = Path(__file__).resolve().parents[1] / "tune_configs" / "ppo_debug.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from editorbot.datasets.demo import DemoConfig, generate
    from editorbot.datasets.song import SongConfig

    out = tmp_path_factory.mktemp("demo")
    # Short songs (the generator's minimum form, 3 phrases) keep features and rendering fast.
    generate(out, n_tracks=3, seed=0, config=DemoConfig(song=SongConfig(min_seconds=20,
             max_seconds=30, sr=22050)))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def bc_dir(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bc")
    argv = ["bc-data", "--labels", str(demo / "truth"), "--data-dir", str(demo), "--out", str(out)]
    assert cli(argv) == 0
    return out


def test_bc_data_replays_the_expert_through_the_env(bc_dir: Path, demo: Path) -> None:
    from editorbot.envs.editing_env import EditingEnv
    from editorbot.envs.track_table import load_tables
    from editorbot.training.bc_data import read_episode

    tables, normalizer = load_tables(bc_dir / "tables")
    assert normalizer is not None and len(tables) == 3
    env = EditingEnv({"tables": tables})
    table = tables[0]
    path = bc_dir / "episodes" / f"{table.name}.parquet"
    rows = pq.read_table(path, columns=["actions", "rewards", "terminateds"]).to_pylist()
    assert [r["actions"] for r in rows] == table.expert_actions.tolist()
    assert rows[-1]["terminateds"] and not any(r["terminateds"] for r in rows[:-1])
    stored, _ = read_episode(path)  # plain arrays, no unpickling
    obs, _ = env.reset(options={"track_index": 0})
    for i, row in enumerate(rows):  # the stored observations are the env's, history included
        for key, value in obs.items():
            np.testing.assert_array_equal(stored[key][i], value)
        obs, reward, _, _, info = env.step(row["actions"])
        assert reward == row["rewards"]
    terms = info["episode_terms"]
    # The expert earns full agreement and reproduces its own output map (float sums of 1/n).
    assert terms["agree_type"] == pytest.approx(1.0, abs=1e-9)
    assert terms["similarity"] == pytest.approx(1.0, abs=1e-6)
    # The target is the edit file's duration in grid beats; the demo grid is steady, so only
    # rounding of the beat positions to samples separates it from the plan's beat count.
    assert terms["duration"] > -0.01
    dl = DecisionList.load(demo / "truth" / f"{table.name}.json")
    assert table.n_beats == len(dl.beat_times)


def test_bc_data_names_a_missing_audio_file(tmp_path: Path, demo: Path) -> None:
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "ghost.json").write_text((demo / "truth").glob("*.json").__next__().read_text())
    argv = ["bc-data", "--labels", str(labels), "--data-dir", str(demo), "--out", str(tmp_path)]
    assert cli(argv) == 1  # one line on stderr, no traceback


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(600)
def test_train_rl_then_edit_end_to_end(ray_session: object, demo: Path, tmp_path: Path) -> None:
    save = tmp_path / "run"
    # From the raw data folder (labels in truth/), as the "done when" runs it: features,
    # expert replay, 3 in-memory BC epochs, 1 PPO iteration warming up the value head only, 1
    # with mixed BC, checkpoints, best/.
    argv = ["train", "rl", "--config", str(CONFIG), "--data-dir", str(demo),
            "--save-dir", str(save), "--stop-iters", "2"]  # fmt: skip
    assert cli(argv) == 0
    rows = [json.loads(line) for line in (save / "progress.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1, 2]  # 0 = after BC pretraining alone
    assert "bc_loss" not in rows[1] and rows[1]["warmup_vf_loss"] > 0  # value warm-up only
    assert np.isfinite(rows[2]["bc_loss"]) and rows[2]["bc_loss"] > 0
    for key in ("val_type_agreement", "test_type_agreement"):  # 3 tracks: 1 train, 1 val, 1 test
        assert all(0.0 <= r[key] <= 1.0 for r in rows)
    # Every PPO row says how many env steps it sampled and how long sampling + learning took.
    assert all(r["env_steps"] > 0 and r["train_sec"] > 0 for r in rows[1:])
    assert len(list((save / "data" / "train" / "episodes").glob("*.parquet"))) == 1
    assert (save / "bc" / "rl_module").is_dir()  # BC pretraining ran and saved
    assert (save / "checkpoints" / "iter_0002").is_dir()
    assert list((save / "logs").glob("events.out.tfevents.*"))  # TensorBoard scalars
    assert (save / "curves.png").stat().st_size > 10_000
    _assert_warmup_moved_only_the_value_head(save)
    meta = json.loads((save / "best" / "editorbot_checkpoint.json").read_text())
    # best/ is the BC start (0) unless a PPO iteration beat it on the validation track.
    assert meta["kind"] == "rl" and meta["validation"]["iteration"] in (0, 1, 2)
    best_row = max(rows, key=lambda r: r["val_type_agreement"])
    assert meta["validation"]["type_agreement"] == best_row["val_type_agreement"]
    assert meta["validation"]["test_type_agreement"] == best_row["test_type_agreement"]
    assert "shown_target_ratio" not in meta["env_config"]  # `edit` shows its own target

    raw = sorted((demo / "input").glob("*_raw.wav"))[0]
    outputs = []
    for i in range(2):
        out = tmp_path / f"edited{i}.wav"
        assert (
            cli(["edit", str(raw), "--checkpoint", str(save / "best"), "--output", str(out)]) == 0
        )
        outputs.append(out)
    import soundfile as sf

    y, sr = sf.read(str(outputs[0]), always_2d=True)
    assert sr == sf.info(str(raw)).samplerate and y.shape[0] > 0 and np.isfinite(y).all()
    first, second = (o.with_suffix(".decisions.json").read_text() for o in outputs)
    dl = DecisionList.from_json(first)
    assert len(dl.decisions) > 0
    assert json.loads(first)["decisions"] == json.loads(second)["decisions"]  # deterministic


def _assert_warmup_moved_only_the_value_head(save: Path) -> None:
    """After the warm-up iteration the policy (encoder and heads) is still the BC policy."""
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModule

    bc = RLModule.from_checkpoint(str(save / "bc" / "rl_module")).state_dict()
    path = save / "checkpoints" / "iter_0001" / "learner_group" / "learner" / "rl_module"
    warm = RLModule.from_checkpoint(str(path / "default_policy")).state_dict()
    policy = [k for k in bc if not k.startswith(("_value", "_tempo", "_energy", "_phrase"))]
    assert policy and all(torch.equal(bc[k], warm[k]) for k in policy)
    value = [k for k in bc if k.startswith("_value_head")]
    assert value and any(not torch.equal(bc[k], warm[k]) for k in value)


def test_split_hides_each_tracks_target_ratio_from_training(bc_dir: Path, tmp_path: Path) -> None:
    import dataclasses

    from editorbot.envs.editing_env import GLOBAL_NAMES
    from editorbot.training.bc_data import load_expert_arrays
    from editorbot.training.ppo import load_run_config
    from editorbot.training.rl_train import split_tracks

    cfg = dataclasses.replace(load_run_config(CONFIG), test_fraction=0.0)
    split = split_tracks(bc_dir, tmp_path, cfg)
    ratios = [t.target_ratio for t in split.train]
    assert len(split.train) == 2 and len(split.val) == 1 and not split.test
    assert not {t.name for t in split.train} & {t.name for t in split.val}
    assert abs(ratios[0] - ratios[1]) > 0.01  # the demo tracks' edits cut different shares
    obs = load_expert_arrays(split.train_dir / "episodes").obs
    shown = obs["globals"][:, GLOBAL_NAMES.index("target_ratio")]
    # Every expert step shows the training mean (float32 storage: 1e-6 relative).
    np.testing.assert_allclose(shown, np.mean(ratios), rtol=1e-6)
    visible = split_tracks(bc_dir, tmp_path, dataclasses.replace(cfg, hide_target_ratio=False))
    obs = load_expert_arrays(visible.train_dir / "episodes").obs
    shown = obs["globals"][:, GLOBAL_NAMES.index("target_ratio")]
    np.testing.assert_allclose(np.unique(shown), sorted(ratios), rtol=1e-6)  # each its own


def test_run_config_rejects_an_unknown_key_by_name(tmp_path: Path) -> None:
    from editorbot.errors import ParameterError
    from editorbot.training.ppo import load_run_config

    assert load_run_config(CONFIG).module.hidden == 32  # the shipped debug config loads
    bad = tmp_path / "bad.yaml"
    bad.write_text("ppo:\n  learning_rate: 0.1\n")
    with pytest.raises(ParameterError, match=r"bad.yaml: ppo: unknown key 'learning_rate'"):
        load_run_config(bad)


def test_the_removed_rllib_bc_key_is_one_error_line(tmp_path: Path, capsys) -> None:
    # bc.iterations chose RLlib's BC algorithm (gone: it read a driver-local, pickle-packed copy
    # of the episodes); a config that still sets it is refused by name, not silently ignored.
    old = tmp_path / "old.yaml"
    old.write_text("bc:\n  epochs: 0\n  iterations: 5\n")
    argv = ["train", "rl", "--config", str(old), "--save-dir", str(tmp_path / "m")]
    assert cli(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "old.yaml: bc: unknown key 'iterations' for BCSettings" in err[0], err
    assert "valid keys are epochs," in err[0]


def test_seed_entry_point_reports_missing_bc_data_in_one_line(tmp_path: Path, capsys) -> None:
    from editorbot.train import main

    argv = [
        "--save-dir",
        str(tmp_path / "m"),
        "--bc-mixed",
        str(tmp_path / "nope"),
        "--epochs",
        "1",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no track tables" in err


def test_in_memory_bc_fits_the_expert_and_keeps_the_best_epoch(bc_dir: Path) -> None:
    import torch

    from editorbot.envs.editing_env import EditingEnv
    from editorbot.envs.track_table import load_tables
    from editorbot.inference.rl import validation_metrics
    from editorbot.models.rl_module import ModuleConfig
    from editorbot.training.bc_data import load_expert_arrays
    from editorbot.training.bc_fit import build_module, fit_bc
    from editorbot.training.ppo import BCSettings

    torch.set_num_threads(1)
    tables, _ = load_tables(bc_dir / "tables")
    expert = load_expert_arrays(bc_dir / "episodes")
    obs, actions = expert.obs, expert.actions
    env = EditingEnv({"tables": tables})
    module = build_module(ModuleConfig.tiny(), env.observation_space, env.action_space)

    def score(m: object) -> float:
        return validation_metrics(m, tables, {})["type_agreement"]

    before = score(module)
    settings = BCSettings(epochs=60, eval_every=20, train_batch_size=8)  # a few dozen steps
    fit = fit_bc(module, obs, actions, settings, aux_weight=0.1, evaluate=score)
    # On its own training tracks, BC must nearly reproduce the expert (the expert scores 1.0):
    # 0.9 leaves room for a beat or two of a rare type in these 3 short tracks, while an
    # untrained policy or a KEEP-only one stays far below it (KEEP covers about half the beats).
    assert fit["best_score"] >= 0.9 and fit["best_score"] > before
    assert fit["loss"] < 0.5  # −log π of the expert action, from about log(20·5·5) ≈ 6.2
    # The returned weights are the best epoch's, not the last one's (deterministic greedy eval).
    assert score(module) == pytest.approx(fit["best_score"], abs=1e-12)
    assert fit["best_epoch"] in (20, 40, 60) and len(fit["history"]) == 3


def test_seed_labels_script_reads_truth_and_writes_bc_data(demo: Path, tmp_path: Path) -> None:
    from editorbot.scripts.infer_rich_bc_labels import main

    out = tmp_path / "bc_data"
    assert main(["--data_dir", str(demo), "--out", str(out)]) == 0
    manifest = json.loads((out / "bc_data.json").read_text())
    assert manifest["n_tracks"] == 3 and not (out / "labels").exists()  # truth/ used as is
    assert sorted(p.stem for p in (out / "episodes").glob("*.parquet")) == sorted(
        p.stem for p in (demo / "truth").glob("*.json")
    )


def test_anchor_kl_is_zero_at_the_start_and_grows_as_the_policy_moves(bc_dir: Path) -> None:

    import torch
    from ray.rllib.core.columns import Columns

    from editorbot.envs.editing_env import EditingEnv
    from editorbot.envs.track_table import load_tables
    from editorbot.models.rl_module import ModuleConfig
    from editorbot.training.bc_data import load_expert_arrays
    from editorbot.training.bc_fit import build_module
    from editorbot.training.learner import anchor_kl, frozen_copy

    torch.manual_seed(0)
    tables, _ = load_tables(bc_dir / "tables")
    env = EditingEnv({"tables": tables})
    module = build_module(ModuleConfig.tiny(), env.observation_space, env.action_space)
    obs = load_expert_arrays(bc_dir / "episodes").obs
    batch = {Columns.OBS: {k: torch.from_numpy(v) for k, v in obs.items()}}
    anchor = frozen_copy(module)

    def kl_from_start() -> float:
        return float(anchor_kl(anchor, batch, module.forward_train(batch)).detach())

    # Same weights: only float32 rounding in the log-softmax sums separates the two.
    assert kl_from_start() == pytest.approx(0.0, abs=1e-5)
    assert not any(p.requires_grad for p in anchor.parameters())
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert kl_from_start() > 1e-3  # a moved policy is measurably away from its start


def test_each_learner_draws_its_own_bc_batches_and_the_first_draws_as_one_learner_did() -> None:
    """With several learners, the mixed-BC batches differ between ranks (else every learner
    clones the same expert steps); rank 0 keeps the single-learner stream of the run's seed."""
    from editorbot.training.learner import expert_rng

    n_expert, batch = 10_000, 256

    def draw(rank: int) -> np.ndarray:
        return expert_rng(7, rank).integers(0, n_expert, size=batch)

    assert np.array_equal(draw(0), np.random.default_rng(7).integers(0, n_expert, size=batch))
    # two independent batches of 256 from 10,000 share about 6.5 indices by chance; a shared
    # stream would share all 256
    assert len(np.intersect1d(draw(0), draw(1))) < 40
    assert len(np.intersect1d(draw(1), draw(2))) < 40
