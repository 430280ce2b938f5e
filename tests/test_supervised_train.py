"""Aligned targets, and the supervised baseline trained through Ray Train inside Ray Tune.

The pairs are made here with the renderer from known decision lists (a tone per beat, so every
beat has its own spectrum), written as real WAV files and read back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from editorbot.audio.io import load_audio, write_audio
from editorbot.editing.actions import ActionAmount, ActionSize, ActionType
from editorbot.editing.decisions import Decision, DecisionList
from editorbot.editing.render import render
from editorbot.errors import DatasetError
from editorbot.models.supervised import SupervisedConfig
from editorbot.training.supervised_data import (
    CropDataset,
    beat_labels,
    log_mel,
    prepare_track,
    split_by_track,
)

SR = 22050
BEAT_SEC = 0.5  # 120 BPM
N_BEATS = 16
CFG = SupervisedConfig.tiny()
HOP = CFG.hop_length
T_ = ActionType
DECISIONS = (
    Decision(4, T_.CUT, ActionSize.BAR, ActionAmount.NEUTRAL),
    Decision(8, T_.GAIN, ActionSize.BAR, ActionAmount.POS_LARGE),  # +6 dB
    Decision(12, T_.LOOP, ActionSize.BAR, ActionAmount.NEUTRAL),  # played twice
)


def _tone_track(seed: int) -> np.ndarray:
    """A different pitch on every beat (a scale), so misaligned frames have other spectra."""
    rng = np.random.default_rng(seed)
    midi = 57 + rng.permutation(N_BEATS)
    n = int(BEAT_SEC * SR)
    t = np.arange(n) / SR
    beats = [0.3 * np.sin(2 * np.pi * 440 * 2 ** ((m - 69) / 12) * t) for m in midi]
    return np.concatenate(beats).astype(np.float32)


def _write_pair(root: Path, name: str, seed: int) -> dict[str, Path]:
    y = _tone_track(seed)[None, :]
    beat_times = np.arange(N_BEATS) * BEAT_SEC
    dl = DecisionList(sample_rate=SR, beat_times=beat_times, decisions=DECISIONS)
    edit = render(y, sr=SR, beat_samples=dl.beat_samples(), decisions=dl).y
    paths = {
        "raw": root / "input" / f"{name}_raw.wav",
        "edit": root / "desired_output" / f"{name}_edit.wav",
        "truth": root / "truth" / f"{name}.json",
    }
    write_audio(paths["raw"], y, sr=SR)
    write_audio(paths["edit"], edit, sr=SR)
    dl.save(paths["truth"])
    return paths


def _interior(beat_lo: int, beat_hi: int) -> slice:
    """Frames of beats [lo, hi) at least 4 frames (one n_fft window) from either edge."""
    per_beat = BEAT_SEC * SR / HOP
    return slice(int(beat_lo * per_beat) + 4, int(beat_hi * per_beat) - 4)


def test_beat_labels_follow_the_state_machine() -> None:
    dl = DecisionList(sample_rate=SR, beat_times=np.arange(N_BEATS) * BEAT_SEC, decisions=DECISIONS)
    labels = beat_labels(dl, N_BEATS)
    assert labels[0].tolist() == [T_.KEEP] * 4 + [T_.CUT] * 4 + [T_.GAIN] * 4 + [T_.LOOP] * 4
    assert (labels[1, 4:] == ActionSize.BAR).all() and (labels[1, :4] == ActionSize.BEAT).all()
    assert labels[2, 8] == ActionAmount.POS_LARGE


def test_targets_come_from_the_alignment_not_the_position(tmp_path) -> None:
    p = _write_pair(tmp_path, "a", seed=1)
    ex = prepare_track("a", p["raw"], p["edit"], p["truth"], CFG)
    F, T = ex.S_raw.shape
    assert ex.S_target.shape == (F, T) and ex.labels.shape == (3, T)
    # The beat head's targets: one label per beat of the grid, and the frame labels are them
    # broadcast over each beat's frames.
    assert ex.beat_labels.shape == (3, N_BEATS) and ex.beat_frame.shape == (N_BEATS,)
    assert (
        ex.beat_labels[0].tolist() == [T_.KEEP] * 4 + [T_.CUT] * 4 + [T_.GAIN] * 4 + [T_.LOOP] * 4
    )
    first = ex.beat_frame[5]
    assert (ex.labels[:, first] == ex.beat_labels[:, 5]).all()
    cut = _interior(4, 8)
    assert not ex.target_mask[cut].any()  # the cut bar has no target
    keep, gain = _interior(0, 4), _interior(8, 12)
    assert ex.target_mask[keep].all() and ex.target_mask[gain].all()
    # Kept audio is bit-identical in the edit: the aligned target equals the input (float32
    # mel round-off only).
    np.testing.assert_allclose(ex.S_target[:, keep], ex.S_raw[:, keep], atol=1e-4)
    # +6 dB gain: log-mel magnitude up by ln(10^(6/20)) = 0.691 on bins well above the floor.
    loud = ex.S_raw[:, gain] > -4.0
    diff = (ex.S_target[:, gain] - ex.S_raw[:, gain])[loud]
    assert np.median(diff) == pytest.approx(np.log(10 ** (6 / 20)), abs=0.02)
    # Position would pair raw beats 8-11 (GAIN) with edit beats 8-11, which are the first LOOP
    # pass of raw beats 12-15 (other pitches): about 1 nat of log-mel apart, not 0.69 uniform.
    S_edit = log_mel(load_audio(p["edit"]).y[0], CFG)
    positional = S_edit[:, gain]
    assert np.abs(positional - ex.S_target[:, gain]).mean() > 1.0


def test_split_by_track_and_crops(tmp_path) -> None:
    p = _write_pair(tmp_path, "a", seed=1)
    ex = prepare_track("a", p["raw"], p["edit"], p["truth"], CFG)
    train, val = split_by_track([ex, ex, ex, ex, ex], val_fraction=0.2, seed=0)
    assert (len(train), len(val)) == (4, 1)
    with pytest.raises(DatasetError, match="need at least 2 tracks"):
        split_by_track([ex], val_fraction=0.2, seed=0)
    ds = CropDataset([ex], crop_frames=CFG.crop_frames, n_crops=3, seed=0)
    item = ds[0]
    assert item["S_raw"].shape == (CFG.n_mels, CFG.crop_frames)
    assert item["labels"].shape == (3, CFG.crop_frames) and item["frame_mask"].all()
    assert (ds[1]["S_raw"] == ds[1]["S_raw"]).all()  # deterministic per (seed, epoch, index)


def _scalar_tags(tb_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for f in tb_dir.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(f))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"]) | set(acc.Tags()["images"])
    return tags


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(240)
def test_train_checkpoint_reload_and_edit(tmp_path, ray_session) -> None:
    """Tiny config, a few steps through Ray Train in Tune via the CLI, then edit a file."""
    from editorbot.cli import main
    from editorbot.inference.supervised import predict_decisions, resynthesise
    from editorbot.training.supervised_train import METRIC

    for i in range(3):
        _write_pair(tmp_path / "data", f"t{i}", seed=i)
    save = tmp_path / "models"
    argv = ["train", "supervised", "--data-dir", str(tmp_path / "data"), "--save-dir", str(save)]
    argv += ["--tiny", "--epochs", "2", "--batch-size", "2", "--steps-per-epoch", "3"]
    assert main([*argv, "--checkpoint-every", "2"]) == 0
    best = save / "best"
    meta = json.loads((best / "editorbot_checkpoint.json").read_text())
    assert meta["kind"] == "supervised" and meta["config"]["n_mels"] == CFG.n_mels
    assert meta["epoch"] in (1, 2) and np.isfinite(meta[METRIC])
    assert list((save / "ray_results" / "train").glob("epoch_0002/weights.pt"))
    tags = _scalar_tags(save / "tensorboard")
    for tag in ("train/l1_loss", "train/msstft_loss", "train/edit_consistency_loss", METRIC):
        assert tag in tags
    for tag in ("train/label_loss", "val/type_accuracy"):
        assert tag in tags
    assert "val/spectrogram" in tags
    progress = next((save / "ray_results" / "supervised").glob("*/progress.csv")).read_text()
    assert progress.count("\n") == 3  # header + one Tune result per epoch, through the callback

    raw = tmp_path / "data" / "input" / "t0_raw.wav"
    dl = predict_decisions(best, raw, beat_times=np.arange(N_BEATS) * BEAT_SEC)
    dl.validate(N_BEATS)  # valid under the masks: the state machine accepts every decision
    assert dl.decisions[0].beat == 0 and all(0 < d.confidence <= 1 for d in dl.decisions)
    y = load_audio(raw).y
    out = render(y, sr=SR, beat_samples=dl.beat_samples(), decisions=dl)
    write_audio(tmp_path / "edited.wav", out.y, sr=SR, protect=(raw,))
    assert load_audio(tmp_path / "edited.wav", check_duration=False).y.shape == out.y.shape
    mel_out = resynthesise(best, raw, tmp_path / "edited_mel.wav", n_iter=4)
    resynth = load_audio(mel_out)
    assert resynth.sr == CFG.sr and abs(resynth.duration_sec - 8.0) < 0.05  # one hop = 12 ms

    # The user's entry point: `edit` dispatches on the checkpoint's kind, tracks beats itself.
    cli_out = tmp_path / "cli_edit.wav"
    argv = ["edit", str(raw), "--checkpoint", str(best), "--output", str(cli_out)]
    assert main([*argv, "--mel-output", str(tmp_path / "cli_mel.wav")]) == 0
    assert cli_out.exists() and (tmp_path / "cli_mel.wav").exists()
    DecisionList.load(cli_out.with_suffix(".decisions.json"))  # a valid decision list


def test_cli_errors_are_one_line(tmp_path, capsys) -> None:
    from editorbot.supervised_trainer import main

    assert main(["--data-dir", str(tmp_path / "nope"), "--tiny"]) == 1
    assert "nope: no such folder" in capsys.readouterr().err
    _write_pair(tmp_path / "d", "a", seed=0)
    _write_pair(tmp_path / "d", "b", seed=1)
    (tmp_path / "d" / "truth" / "b.json").unlink()
    assert main(["--data-dir", str(tmp_path / "d"), "--tiny", "--epochs", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert "b_raw.wav: no decision list" in err and err.count("\n") == 0
    assert main(["--data-dir", str(tmp_path / "d"), "--epochs", "0"]) == 1
    assert "--epochs must be at least 1" in capsys.readouterr().err


def test_examples_come_from_a_labels_folder(tiny_demo, tmp_path) -> None:
    """User data has no truth/: targets come from `editorbot labels` output given by --labels."""
    import shutil

    from editorbot.training.supervised_data import load_examples

    labels = tmp_path / "labels"
    shutil.copytree(tiny_demo / "truth", labels)
    examples = load_examples(tiny_demo, CFG, labels_dir=labels)
    assert sorted(e.name for e in examples) == sorted(p.stem for p in labels.glob("*.json"))
    with pytest.raises(DatasetError, match=r"run `editorbot labels"):
        load_examples(tiny_demo, CFG, labels_dir=tmp_path / "empty")


def test_the_shipped_long_run_config_is_a_valid_training_config() -> None:
    """``tune_configs/supervised_long.yaml`` (the 32-song run RESULTS.md reports) loads into
    ``SupervisedTrainConfig`` with the values it documents: an unknown or misspelt key would
    make ``train supervised --config`` refuse it."""
    from editorbot.config import from_dict, load_yaml
    from editorbot.training.supervised_train import SupervisedTrainConfig

    path = Path(__file__).resolve().parents[1] / "tune_configs" / "supervised_long.yaml"
    sections = load_yaml(path)
    assert set(sections) == {"train"}
    cfg = from_dict(SupervisedTrainConfig, sections["train"], source=str(path))
    assert (cfg.lr, cfg.epochs, cfg.steps_per_epoch, cfg.checkpoint_every) == (1e-3, 24, 25, 24)
