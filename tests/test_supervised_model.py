"""Shapes and invariants of the supervised model's modules, and its checkpoint round trip."""

from __future__ import annotations

import json

import pytest
import torch

from editorbot.config import from_dict, to_dict
from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES
from editorbot.errors import CheckpointError, ParameterError
from editorbot.models.supervised import (
    CHECKPOINT_JSON,
    EditEncoder,
    LabelHead,
    LogMel,
    MelDecoder,
    SupervisedConfig,
    SupervisedEditModel,
    load_checkpoint,
    save_checkpoint,
)

CFG = SupervisedConfig.tiny()
B, T = 3, 40


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    S = torch.randn(B, CFG.n_mels, T, generator=g)
    labels = torch.stack(
        [
            torch.randint(0, N_TYPES, (B, T), generator=g),
            torch.randint(0, N_SIZES, (B, T), generator=g),
            torch.randint(0, N_AMOUNTS, (B, T), generator=g),
        ],
        1,
    )
    return S, labels


def test_seed_defaults_and_tiny() -> None:
    cfg = SupervisedConfig()
    assert (cfg.encoder_dim, cfg.decoder_dim, cfg.n_layers, cfg.n_heads) == (512, 512, 6, 8)
    assert (cfg.l1_weight, cfg.msstft_weight, cfg.edit_consistency_weight) == (1.0, 1.0, 0.5)
    assert cfg.msstft_fft_sizes == (512, 1024, 2048)
    assert from_dict(SupervisedConfig, to_dict(CFG)) == CFG
    with pytest.raises(ParameterError, match="unknown key 'n_layer'"):
        from_dict(SupervisedConfig, {"n_layer": 2})


def test_module_shapes() -> None:
    S, labels = _inputs()
    enc = EditEncoder(CFG)
    h, z = enc(S, labels)
    assert h.shape == z.shape == (B, T, CFG.encoder_dim)
    logits = LabelHead(CFG)(h)
    assert logits.type.shape == (B, T, N_TYPES)
    assert logits.size.shape == (B, T, N_SIZES)
    assert logits.amount.shape == (B, T, N_AMOUNTS)
    assert logits.argmax().shape == (B, 3, T)
    assert MelDecoder(CFG)(S, z).shape == (B, CFG.n_mels, T)
    out = SupervisedEditModel(CFG)(S, labels)
    assert out.S_edit.shape == (B, CFG.n_mels, T)
    # No labels: the model edits with its own predicted labels (a new track).
    assert SupervisedEditModel(CFG)(S).S_edit.shape == (B, CFG.n_mels, T)


def test_log_mel_shape_and_floor() -> None:
    y = torch.zeros(2, CFG.sr)  # 1 s of silence
    S = LogMel(CFG)(y)
    assert S.shape == (2, CFG.n_mels, CFG.sr // CFG.hop_length + 1)
    # Silence sits at the floor log(1e-5) = -11.51, not -inf (exact up to float32 rounding).
    assert torch.allclose(S, torch.full_like(S, -11.5129), atol=1e-3)


def test_untrained_decoder_is_identity() -> None:
    """The residual decoder's output projection starts at zero: no edit before training."""
    S, labels = _inputs()
    out = SupervisedEditModel(CFG)(S, labels)
    assert torch.equal(out.S_edit, S)


def test_label_head_reads_audio_only_and_decoder_reads_labels() -> None:
    S, labels = _inputs()
    model = SupervisedEditModel(CFG).eval()
    for p in model._decoder._out.parameters():  # make the decoder's output depend on z
        torch.nn.init.normal_(p, std=0.1)
    other = labels.roll(1, dims=2)
    a, b = model(S, labels), model(S, other)
    assert torch.equal(a.logits.type, b.logits.type)  # raw-only path: labels cannot leak in
    assert not torch.allclose(a.S_edit, b.S_edit)  # default tolerances: any real change shows
    assert torch.equal(model.predict_labels(S).type, a.logits.type)


def test_wrong_mel_bins_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected 32 mel bins"):
        SupervisedEditModel(CFG)(torch.zeros(1, 80, 10))


def test_checkpoint_round_trip(tmp_path) -> None:
    S, labels = _inputs()
    model = SupervisedEditModel(CFG).eval()
    for p in model._decoder._out.parameters():
        torch.nn.init.normal_(p, std=0.1)
    save_checkpoint(tmp_path / "best", model, extra={"epoch": 3})
    meta = json.loads((tmp_path / "best" / CHECKPOINT_JSON).read_text())
    assert meta["kind"] == "supervised" and meta["epoch"] == 3 and "editorbot_version" in meta
    loaded, meta2 = load_checkpoint(tmp_path / "best")
    assert loaded.config == CFG and meta2 == meta
    assert torch.equal(loaded(S, labels).S_edit, model(S, labels).S_edit)


def test_bad_checkpoints(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="cannot read checkpoint description"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, SupervisedEditModel(CFG))
    meta = json.loads((tmp_path / CHECKPOINT_JSON).read_text())
    (tmp_path / CHECKPOINT_JSON).write_text(json.dumps({**meta, "kind": "rl"}))
    with pytest.raises(CheckpointError, match="kind 'rl', expected 'supervised'"):
        load_checkpoint(tmp_path)
    (tmp_path / CHECKPOINT_JSON).write_text(
        json.dumps({**meta, "config": {**meta["config"], "n_layers": 2}})
    )
    with pytest.raises(CheckpointError, match="weights do not fit the config"):
        load_checkpoint(tmp_path)
