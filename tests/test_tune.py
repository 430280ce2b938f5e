"""``editorbot tune``: YAML → SweepConfig, fitting trials to the cluster, retries and resume.

The Ray tests use the session's in-process Ray (``ray_session``, 2 CPUs): each trial of the
debug config asks 1 CPU (``num_env_runners: 0``), so two trials run side by side.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from editorbot.cli import main as cli
from editorbot.errors import ParameterError

DEBUG = Path(__file__).resolve().parents[1] / "tune_configs" / "ppo_debug.yaml"


def _sweep_file(tmp_path: Path, tune: dict, **run: dict) -> Path:
    data = yaml.safe_load(DEBUG.read_text())
    for section, values in run.items():
        data[section] = {**data.get(section, {}), **values}
    data["tune"] = tune
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def demo(tiny_demo: Path) -> Path:
    return tiny_demo


@pytest.fixture(scope="module")
def bc_dir(tiny_bc_dir: Path) -> Path:
    return tiny_bc_dir


def test_shipped_sweep_files_load() -> None:
    from editorbot.training.tune_run import load_sweep, param_space

    sweep = load_sweep(DEBUG.parent / "ppo_sweep.yaml")
    space = param_space(sweep.sweep)
    assert sweep.sweep.scheduler.kind == "asha"
    assert set(space["ppo"]) == {"lr", "entropy_coeff", "clip_param", "bc_weight"}
    assert set(space["module"]) == {"kernel_size", "layers"}
    assert load_sweep(DEBUG).sweep.num_samples == 1  # no tune: section = one run, defaults
    assert load_sweep(DEBUG.parent / "ppo_cluster.yaml").run.ppo.num_gpus_per_learner == 1.0


@pytest.mark.parametrize(
    ("tune", "match"),
    [
        ({"num_sample": 2}, r"sweep.yaml: tune: unknown key 'num_sample'"),
        ({"scheduler": {"kind": "hyperband"}}, r"sweep.yaml: tune: scheduler: kind 'hyperband'"),
        ({"search_space": {"ppo.learning_rate": {"uniform": [0, 1]}}}, r"'ppo.learning_rate'"),
        ({"search_space": {"ppo.lr": {"gauss": [0, 1]}}}, r"ppo.lr: .*give one of uniform"),
        ({"search_space": {"ppo.num_env_runners": {"choice": [0, 1]}}}, r"sets resources"),
        (
            {"stop_iters": 1, "scheduler": {"kind": "asha", "grace_period": 4}},
            r"sweep.yaml: tune: scheduler: grace_period 4 is longer than stop_iters 1",
        ),
    ],
)
def test_bad_sweep_files_name_the_key_and_file(tmp_path: Path, tune: dict, match: str) -> None:
    from editorbot.training.tune_run import load_sweep

    with pytest.raises(ParameterError, match=match):
        load_sweep(_sweep_file(tmp_path, tune))


def test_a_trial_that_cannot_fit_fails_fast_with_the_fix() -> None:
    import dataclasses

    from editorbot.training.ppo import PPOSettings
    from editorbot.training.tune_run import check_fits, load_sweep, resources

    run = load_sweep(DEBUG).run
    run = dataclasses.replace(run, ppo=dataclasses.replace(run.ppo, num_env_runners=3))
    assert isinstance(run.ppo, PPOSettings)
    pgf = resources(run, {"window": 64})
    assert pgf.required_resources["CPU"] == 4  # RLlib: 1 for the algorithm + 1 per env runner
    with pytest.raises(ParameterError, match=r"x.yaml: one trial needs CPU=4 .* has CPU=2"):
        check_fits(pgf, {"CPU": 2.0}, "x.yaml")
    check_fits(pgf, {"CPU": 4.0}, "x.yaml")  # exactly enough is enough


def test_a_trial_waits_for_a_growing_cluster_then_fails_with_the_fix(ray_session) -> None:
    import time

    from ray.tune.execution.placement_groups import PlacementGroupFactory
    from ray.util import placement_group_table

    from editorbot.training.tune_run import check_fits, wait_until_fits

    nowhere = PlacementGroupFactory([{"CPU": 1}, {"CPU": 1, "nowhere": 1}])
    t0 = time.monotonic()
    wait_until_fits(nowhere, 2.0)  # no autoscaler here: nothing comes, it gives up
    assert time.monotonic() - t0 >= 1.5  # it did wait (2 s; 0.5 s slack for the clock)
    # the reservation that signalled the demand is released, not left holding the cluster
    assert all(pg["state"] == "REMOVED" for pg in placement_group_table().values())
    with pytest.raises(ParameterError, match="nowhere=1"):
        check_fits(nowhere, ray_session.cluster_resources(), "x.yaml")
    before = len(placement_group_table())
    wait_until_fits(PlacementGroupFactory([{"CPU": 1}]), 60.0)  # fits: returns at once
    assert len(placement_group_table()) == before  # without reserving (nor waiting on) anything


def _iterations(trial_dir: Path) -> list[int]:
    with open(trial_dir / "progress.csv") as f:
        return [int(row["iteration"]) for row in csv.DictReader(f)]


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(300)
def test_a_trial_that_raises_is_retried_from_its_checkpoint(
    ray_session: object, bc_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tune = {
        "name": "retry",
        "stop_iters": 2,
        "max_failures": 1,
        "inject_failure_at_iter": 1,
        "search_space": {"ppo.lr": {"grid_search": [1.0e-4, 3.0e-4]}},
    }
    path = _sweep_file(tmp_path, tune)
    argv = ["tune", str(path), "--bc-data", str(bc_dir), "--storage", str(tmp_path / "s")]
    assert cli(argv) == 0
    out = capsys.readouterr().out
    exp = tmp_path / "s" / "retry"
    trials = sorted(p for p in exp.iterdir() if p.name.startswith("rl_trial"))
    assert len(trials) == 2
    assert len(list(exp.glob(".injected_failure_*"))) == 2  # each trial raised once ...
    for trial in trials:
        # ... and was restored from iteration 1's checkpoint: a restart from scratch would
        # have logged iteration 1 twice.
        assert _iterations(trial) == [1, 2]
    assert "best checkpoint: " + str(exp) in out and out.count(" OK ") == 2


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(300)
def test_resume_continues_an_errored_sweep_without_losing_iterations(
    ray_session: object, bc_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    tune = {"name": "resume", "stop_iters": 2, "max_failures": 0, "inject_failure_at_iter": 1}
    path = _sweep_file(tmp_path, tune)
    argv = ["tune", str(path), "--bc-data", str(bc_dir), "--storage", str(tmp_path / "s")]
    assert cli(argv) == 1  # no retries: the trial errors and the command says so in one line
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "1 of 1 trials failed" in err and "--resume" in err
    assert cli([*argv, "--resume"]) == 0
    (trial,) = (p for p in (tmp_path / "s" / "resume").iterdir() if p.name.startswith("rl_"))
    assert _iterations(trial) == [1, 2]  # iteration 1 came from the checkpoint, not re-run


def test_resume_without_a_sweep_says_so(
    ray_session: object, bc_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["tune", str(DEBUG), "--bc-data", str(bc_dir), "--storage", str(tmp_path), "--resume"]
    assert cli(argv) == 1
    assert "no sweep to resume" in capsys.readouterr().err


def test_trial_checkpoints_from_another_version_are_refused(tmp_path: Path) -> None:
    from editorbot.errors import CheckpointError
    from editorbot.training.tune_trial import STATE_JSON, read_trial_state, trial_state

    good = trial_state(3)
    (tmp_path / STATE_JSON).write_text(json.dumps(good))
    assert read_trial_state(tmp_path)["iteration"] == 3  # this version's own state loads
    (tmp_path / STATE_JSON).write_text(json.dumps({**good, "feature_version": "0"}))
    with pytest.raises(CheckpointError, match=r"feature version '0'.*start the sweep afresh"):
        read_trial_state(tmp_path)
    (tmp_path / STATE_JSON).write_text(json.dumps({**good, "editorbot_version": "99.0.0"}))
    with pytest.raises(CheckpointError, match=r"written by editorbot 99.0.0"):
        read_trial_state(tmp_path)
    (tmp_path / STATE_JSON).unlink()
    with pytest.raises(CheckpointError, match=r"missing or unreadable"):
        read_trial_state(tmp_path)


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(300)
def test_supervised_sweep_runs_a_torch_trainer_per_trial(
    ray_session: object, demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import dataclasses

    from editorbot.models.supervised import SupervisedConfig

    data = {
        "model": dataclasses.asdict(SupervisedConfig.tiny()),
        # The smallest run that reports twice: 2 epochs of 3 steps on 2-crop batches.
        "train": {
            "epochs": 2,
            "batch_size": 2,
            "steps_per_epoch": 3,
            "val_crops": 2,
            "checkpoint_every": 1,
        },
        "tune": {
            "trainable": "supervised",
            "name": "sup",
            "metric": "val/total_loss",
            "mode": "min",
            "max_concurrent_trials": 1,
            "search_space": {"train.lr": {"loguniform": [1.0e-3, 3.0e-3]}},
        },
    }
    path = tmp_path / "sup.yaml"
    path.write_text(yaml.safe_dump(data))
    argv = ["tune", str(path), "--data-dir", str(demo), "--storage", str(tmp_path / "s")]
    assert cli(argv) == 0
    out = capsys.readouterr().out
    trials = sorted(p for p in (tmp_path / "s" / "sup").iterdir() if p.is_dir())
    # One trial (a TorchTrainer costs ~30 s on 2 cores); the retry test covers two at once.
    (trial,) = trials
    assert 1.0e-3 <= json.loads((trial / "params.json").read_text())["train"]["lr"] <= 3.0e-3
    assert out.count(" OK ") == 1 and f"best checkpoint: {trial / 'best'}" in out


@pytest.mark.ray
@pytest.mark.timeout(300)
def test_a_tune_trial_is_the_train_rl_run(
    ray_session: object, bc_dir: Path, tmp_path: Path
) -> None:
    """One trainable: a trial splits, pretrains BC, chooses best/ and is ranked by the same
    validation agreement as `train rl` with the same config (same seed: same BC start)."""
    import json

    from editorbot.training.ppo import load_run_config
    from editorbot.training.rl_train import train_rl

    path = _sweep_file(tmp_path, {"name": "same", "stop_iters": 1})
    argv = ["tune", str(path), "--bc-data", str(bc_dir), "--storage", str(tmp_path / "s")]
    assert cli(argv) == 0
    (trial,) = (p for p in (tmp_path / "s" / "same").iterdir() if p.name.startswith("rl_"))
    reported = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
    assert [r["iteration"] for r in reported] == [1]
    trial_rows = [json.loads(line) for line in (trial / "progress.jsonl").read_text().splitlines()]
    assert reported[0]["val_type_agreement"] == trial_rows[-1]["val_type_agreement"]
    trial_best = json.loads((trial / "best" / "editorbot_checkpoint.json").read_text())

    train_rl(load_run_config(path), bc_dir=bc_dir, save_dir=tmp_path / "rl", stop_iters=1)
    rl_rows = [json.loads(line) for line in (tmp_path / "rl" / "progress.jsonl").read_text()
               .splitlines()]  # fmt: skip
    assert [r["iteration"] for r in trial_rows] == [r["iteration"] for r in rl_rows] == [0, 1]
    # The BC start is deterministic given the seed: the same split, epochs and agreement.
    assert trial_rows[0]["val_type_agreement"] == rl_rows[0]["val_type_agreement"]
    assert set(trial_rows[0]) == set(rl_rows[0])  # the same metrics, named alike
    # best/ is what the best validation agreement chose, in the trial as in train rl.
    top = max(r["val_type_agreement"] for r in trial_rows)
    assert trial_best["validation"]["type_agreement"] == top
