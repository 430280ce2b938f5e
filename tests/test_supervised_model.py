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
    LogMel,
    MelDecoder,
    SupervisedConfig,
    SupervisedEditModel,
    load_checkpoint,
    save_checkpoint,
)
from editorbot.models.supervised_beats import (
    N_CONTEXT_FIXED,
    BeatTrack,
    beat_context,
    beat_of_frame,
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
    assert MelDecoder(CFG)(S, z).shape == (B, CFG.n_mels, T)
    out = SupervisedEditModel(CFG)(S, labels)
    assert out.S_edit.shape == (B, CFG.n_mels, T) and out.beat is None
    # Whole tracks of different lengths: one row of beat logits each, padded to the longest.
    tracks = _tracks()
    beat = SupervisedEditModel(CFG)(S, labels, tracks).beat
    assert beat.type.shape == (2, 7, N_TYPES)
    assert beat.size.shape == (2, 7, N_SIZES) and beat.amount.shape == (2, 7, N_AMOUNTS)
    assert beat.mask.tolist() == [[True] * 7, [True] * 4 + [False] * 3]


def _tracks() -> list[BeatTrack]:
    """Two tracks longer than one crop window: 150 frames / 7 beats and 90 frames / 4 beats."""
    g = torch.Generator().manual_seed(1)
    return [
        BeatTrack(torch.randn(CFG.n_mels, 150, generator=g), torch.arange(0, 140, 20), 0),
        BeatTrack(torch.randn(CFG.n_mels, 90, generator=g), torch.tensor([5, 25, 45, 65]), 1),
    ]


def test_beat_pooling_follows_the_grid() -> None:
    """Beat i owns frames [beat_frame[i], beat_frame[i + 1]); frames before beat 0 go to beat 0."""
    idx = beat_of_frame(torch.tensor([3, 5, 9]), 12)
    assert idx.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    # The context: position 0 -> 1 across the track, bar phase from the downbeat, level against
    # the track's mean (a beat 2 nats above the others reads +2 * 2/3 relative to the mean).
    S_beat = torch.zeros(3, 4)
    S_beat[1] = 2.0
    ctx = beat_context(S_beat, downbeat_phase=1)
    assert ctx[:, 0].tolist() == [0.0, 0.5, 1.0]
    assert ctx[:, 2:6].argmax(1).tolist() == [3, 0, 1]  # beat 1 is the downbeat
    assert ctx[1, N_CONTEXT_FIXED - 1].item() == pytest.approx(4.0 / 3.0)


def test_beat_head_sees_the_whole_track() -> None:
    """A change in one beat's audio moves the logits of beats far from it (attention across the
    track, not a crop), and the head never reads labels."""
    model = SupervisedEditModel(CFG).eval()
    tracks = _tracks()[:1]
    a = model.beat_logits(tracks).type
    S = tracks[0].S.clone()
    S[:, 120:140] += 3.0  # beat 6 only
    b = model.beat_logits([tracks[0]._replace(S=S)]).type
    assert not torch.allclose(a[0, 0], b[0, 0])


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
    tracks = _tracks()
    a, b = model(S, labels, tracks), model(S, other, tracks)
    assert torch.equal(a.beat.type, b.beat.type)  # raw-only path: labels cannot leak in
    assert not torch.allclose(a.S_edit, b.S_edit)  # default tolerances: any real change shows
    assert torch.equal(model.beat_logits(tracks).type, a.beat.type)


def test_wrong_mel_bins_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected 32 mel bins"):
        SupervisedEditModel(CFG)(torch.zeros(1, 80, 10), torch.zeros(1, 3, 10, dtype=torch.long))


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


def test_beat_head_learns_a_rule_only_the_song_position_tells() -> None:
    """Every beat sounds the same; the label is CUT on the first 4 beats and KEEP after (a radio
    intro trim). Only the beat's place in the track tells them apart — what a per-frame head on a
    one-second crop cannot see. 60 Adam steps on two such tracks fit it on a third, unseen length.
    """
    from editorbot.editing.actions import ActionType
    from editorbot.models.losses import label_cross_entropy

    torch.manual_seed(0)
    model = SupervisedEditModel(CFG)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def track(n_beats: int) -> tuple[BeatTrack, torch.Tensor]:
        S = torch.zeros(CFG.n_mels, n_beats * 20) - 4.0  # silence-like, identical on every beat
        labels = torch.zeros(3, n_beats, dtype=torch.long)
        labels[0, :4] = ActionType.CUT
        return BeatTrack(S, torch.arange(n_beats) * 20, 0), labels

    train = [track(24), track(32)]
    for _ in range(60):
        out = model.beat_logits([t for t, _ in train])
        W = out.type.shape[1]
        labels = torch.stack([torch.nn.functional.pad(y, (0, W - y.shape[1])) for _, y in train])
        loss = label_cross_entropy(out, labels, out.mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    test, labels = track(28)
    pred = model.eval().beat_logits([test]).type[0].argmax(-1)
    assert (pred == labels[0]).float().mean().item() >= 0.9  # at most 2 of 28 beats off at the edge
