"""Evaluation: metrics on signals with known answers, baselines, and ``editorbot evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from editorbot import cli
from editorbot.editing.actions import ActionAmount, ActionSize, ActionType, action_masks
from editorbot.editing.decisions import Decision, DecisionList
from editorbot.evaluation import baselines, metrics
from editorbot.evaluation.label_metrics import beat_labels

SR = 22050
CFG = metrics.MetricsConfig()


def _melody(seed: int, seconds: float = 8.0) -> np.ndarray:
    """Notes of random pitch, 0.25 s each: every stretch of it sounds different."""
    rng = np.random.default_rng(seed)
    n = int(0.25 * SR)
    t = np.arange(n) / SR
    notes = [
        np.sin(2 * np.pi * f * t) * np.hanning(n) for f in rng.uniform(200, 2000, int(seconds * 4))
    ]
    return (0.5 * np.concatenate(notes)).astype(np.float32)


def _grid_list(decisions: list[Decision], n_beats: int = 32) -> DecisionList:
    return DecisionList(SR, np.arange(n_beats) * 0.5, tuple(decisions))


def test_spectral_distance_is_zero_for_identity_and_survives_a_cut() -> None:
    y = _melody(0)
    same = metrics.aligned_spectral_distance(y, y, config=CFG)
    # Identical inputs: the DTW path is the diagonal and every frame pair is equal (float noise).
    assert same["log_mel_l1"] < 1e-6 and same["mrstft"] < 1e-3
    cut = np.concatenate([y[: 2 * SR], y[4 * SR :]])  # 2 s removed from the middle
    other = _melody(1, seconds=6.0)
    d_cut = metrics.aligned_spectral_distance(cut, y, config=CFG)
    d_other = metrics.aligned_spectral_distance(other, y, config=CFG)
    # After aligning, a cut version of the same music matches frame for frame except near the
    # seam (a few 0.1 s frames of 60), so it must be far closer than unrelated notes; a factor
    # of 3 leaves room for the seam frames and the STFT frames straddling it.
    assert 3 * d_cut["log_mel_l1"] < d_other["log_mel_l1"]
    assert 2 * d_cut["mrstft"] < d_other["mrstft"]


def test_duration_ratio_error() -> None:
    # 3 s against 4 s is exactly 25 % short.
    assert metrics.duration_ratio_error(np.zeros(3 * SR), np.zeros(4 * SR)) == pytest.approx(0.25)


def test_seam_score_flags_a_click_and_not_a_smooth_join() -> None:
    t = np.arange(2 * SR) / SR
    y = 0.5 * np.sin(2 * np.pi * 220 * t)
    jump = y.copy()
    at = SR + 25  # a quarter period of 220 Hz after a zero crossing: the sine is at its peak
    jump[at:] = -jump[at:]  # a polarity flip there: a click
    seams = np.array([at])
    smooth = metrics.seam_discontinuity(y, seams, sr=SR, window_ms=5.0)
    click = metrics.seam_discontinuity(jump, seams, sr=SR, window_ms=5.0)
    # A continuous sine has the same first-difference RMS everywhere: score 1 within 10 %
    # (a 5 ms window holds ~1 period of 220 Hz, so the RMS varies a little with phase).
    assert smooth["seam_score_mean"] == pytest.approx(1.0, rel=0.1)
    # The flip is a step of ~2 × amplitude in one sample; over 110 samples that raises the RMS
    # of the first difference by well over 2× the sine's own (measured ~3×).
    assert click["seam_score_mean"] > 2.0 and click["n_seams"] == 1


def test_boundary_scores_hit_and_miss() -> None:
    cut = Decision(8, ActionType.CUT, ActionSize.TWO_BARS, ActionAmount.NEUTRAL)
    ref = _grid_list([cut])
    # Same decisions: every cut point (4 s and 8 s) is hit at either window.
    hit = metrics.boundary_scores(ref, ref, duration_sec=16.0, config=CFG)
    assert hit["cut_hit_rate@0.5s"] == 1.0 and hit["cut_f@3s"] == 1.0
    # Keep-all has no inner boundary: nothing hit.
    miss = metrics.boundary_scores(ref, _grid_list([]), duration_sec=16.0, config=CFG)
    assert miss["cut_hit_rate@3s"] == 0.0
    # One bar late (2 s at 120 BPM): missed at ±0.5 s, hit at ±3 s.
    late = _grid_list([Decision(12, ActionType.CUT, ActionSize.TWO_BARS, ActionAmount.NEUTRAL)])
    off = metrics.boundary_scores(ref, late, duration_sec=16.0, config=CFG)
    assert off["cut_hit_rate@0.5s"] == 0.0 and off["cut_hit_rate@3s"] == 1.0


def test_baselines_are_valid_seeded_and_cover_the_grid() -> None:
    ref = _grid_list([Decision(4, ActionType.GAIN, ActionSize.BAR, ActionAmount.POS_SMALL)] * 1)
    a = baselines.random_policy(ref, seed=3)
    b = baselines.random_policy(ref, seed=3)
    assert a.to_json() == b.to_json()  # seeded: the same list
    assert a.to_json() != baselines.random_policy(ref, seed=4).to_json()
    a.validate(32)  # every action valid where taken (raises otherwise)
    assert len({d.type for d in a.decisions}) > 3  # uniform over types, not stuck on one
    assert baselines.keep_all(ref).decisions == ()
    action = baselines.majority_action([ref])
    assert action == (ActionType.GAIN, ActionSize.BAR, ActionAmount.POS_SMALL)
    majority = baselines.majority_policy(ref, action)
    labels = beat_labels(majority).labels[:, 0]
    assert (labels == ActionType.GAIN).all()  # BAR fits 32 beats exactly: GAIN everywhere


def test_random_policy_respects_masks_at_every_step() -> None:
    from editorbot.editing.actions import initial_state, step

    dl = baselines.random_policy(_grid_list([], n_beats=40), seed=0)
    state = initial_state(40)
    for d in dl.decisions:
        type_mask, size_mask, amount_mask = action_masks(state)
        assert type_mask[d.type] and size_mask[d.type, d.size] and amount_mask[d.type, d.amount]
        state, _ = step(state, d.type, d.size, d.amount)
    assert state.done


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from editorbot.datasets.demo import DemoConfig, generate
    from editorbot.datasets.song import SongConfig

    out = tmp_path_factory.mktemp("pairs")
    generate(
        out, n_tracks=1, seed=5, config=DemoConfig(song=SongConfig(min_seconds=12, max_seconds=14))
    )
    return out


def test_evaluate_baselines_only_oracle_is_exact(pair_dir: Path, tmp_path: Path) -> None:
    from editorbot.evaluation.report import evaluate

    result = evaluate(pair_dir, [], out_dir=tmp_path)
    s = result["systems"]
    assert result["reference"].startswith("truth")
    # truth/ is the decision list the edit was rendered with: rendering it again is the same
    # audio, so every distance is 0 up to float rounding and every beat agrees.
    assert s["oracle"]["type_accuracy"] == 1.0
    assert s["oracle"]["log_mel_l1"] < 1e-4 and s["oracle"]["duration_ratio_error"] < 1e-6
    assert s["random"]["type_accuracy"] < 0.5  # 20 types uniformly: far from the truth
    assert json.loads((tmp_path / "metrics.json").read_text())["pairs"] == result["pairs"]
    report = (tmp_path / "report.md").read_text()
    for png in ("audio.png", "timeline.png"):
        assert f"]({png})" in report and (tmp_path / png).stat().st_size > 10_000


def test_evaluate_cli_bad_checkpoint_is_one_line(
    pair_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        [
            "evaluate",
            "--data-dir",
            str(pair_dir),
            "--checkpoint",
            str(tmp_path),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "editorbot_checkpoint.json" in err[0]


def test_evaluate_cli_no_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["evaluate", "--data-dir", str(tmp_path), "--checkpoint", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and str(tmp_path) in err


@pytest.mark.slow
def test_report_shows_each_learners_per_type_f1_and_the_decoded_mel(
    pair_dir: Path, tmp_path: Path
) -> None:
    """An (untrained) supervised checkpoint: the report gets the side-by-side per-type F1 table
    and the decoder's mel beside the human edit's; the untrained decoder is the identity, so its
    panel equals the raw log-mel."""
    import numpy as np
    import torch

    from editorbot.editing.decisions import DecisionList
    from editorbot.evaluation.decoded_mel import decoded_mels
    from editorbot.evaluation.report import evaluate
    from editorbot.models.supervised import SupervisedConfig, SupervisedEditModel, save_checkpoint

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "sup", SupervisedEditModel(SupervisedConfig.tiny()).eval())
    result = evaluate(pair_dir, [ckpt], out_dir=tmp_path / "report")
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Per-type F1 of each learner" in report
    assert "| type | support | supervised F1 | keep_all F1 |" in report
    png = tmp_path / "report" / result["decoded_mel"]["supervised"]
    assert f"]({png.name})" in report and png.stat().st_size > 10_000
    name = result["pairs"][0]
    ref = DecisionList.load(pair_dir / "truth" / f"{name}.json")
    mels = decoded_mels(
        ckpt,
        pair_dir / "input" / f"{name}_raw.wav",
        pair_dir / "desired_output" / f"{name}_edit.wav",
        ref,
    )
    assert np.array_equal(mels["supervised decoder (raw time)"], mels["raw"])
    # The human edit on the raw time line is blank exactly where the reference cut frames.
    from editorbot.editing.actions import ActionType

    cuts = any(d.type in (ActionType.CUT, ActionType.SKIP) for d in ref.decisions)
    assert np.isnan(mels["human edit (raw time)"]).any() == cuts
