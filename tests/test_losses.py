"""The supervised losses on known inputs: zero for identical signals, larger for worse ones."""

from __future__ import annotations

import math

import pytest
import torch

from editorbot.editing.actions import ActionType
from editorbot.errors import ParameterError
from editorbot.models.losses import (
    MelToAudio,
    SupervisedLoss,
    class_weights_from_counts,
    label_cross_entropy,
    masked_l1,
    multi_resolution_stft_loss,
)
from editorbot.models.supervised import LabelLogits, LogMel, SupervisedConfig
from editorbot.models.supervised_beats import BeatLabels

CFG = SupervisedConfig.tiny()


def _sine(hz: float, *, n: int = 16384, sr: int = 22050) -> torch.Tensor:
    return 0.5 * torch.sin(2 * math.pi * hz * torch.arange(n) / sr)


def test_masked_l1_known_values() -> None:
    S = torch.zeros(2, 4, 6)
    other = S.clone()
    other[0, :, :3] = 1.0  # error 1 on the first half of example 0
    other[1] += 2.0
    mask = torch.ones(2, 6, dtype=torch.bool)
    assert masked_l1(S, other, mask, reduction="none").tolist() == [0.5, 2.0]
    mask[0, :3] = False  # the wrong frames are masked out (cut frames): no error left
    assert masked_l1(S, other, mask, reduction="none").tolist() == [0.0, 2.0]
    assert masked_l1(S, other, mask, reduction="sum").item() == 2.0
    assert masked_l1(S, other, mask).item() == 1.0
    with pytest.raises(ParameterError, match="reduction must be one of"):
        masked_l1(S, other, mask, reduction="avg")


def test_msstft_zero_for_identical_and_grows_with_difference() -> None:
    y = _sine(440.0)[None]
    # Identical inputs: every difference is exactly 0; 1e-6 only absorbs float32 summation.
    assert multi_resolution_stft_loss(y, y).item() == pytest.approx(0.0, abs=1e-6)
    near = multi_resolution_stft_loss(_sine(460.0)[None], y).item()
    far = multi_resolution_stft_loss(_sine(2000.0)[None], y).item()
    quieter = multi_resolution_stft_loss(0.5 * y, y).item()
    # Half the amplitude: spectral convergence 0.5 and |log 0.5| = 0.69 on every bin above the
    # floor, so clearly positive; a different pitch moves all energy to other bins.
    assert 0.3 < quieter < near < far
    per = multi_resolution_stft_loss(torch.cat([y, 0.5 * y]), torch.cat([y, y]), reduction="none")
    assert per.shape == (2,) and per[0].item() == pytest.approx(0.0, abs=1e-6)  # as above


def test_mel_to_audio_is_deterministic_and_close_to_the_source() -> None:
    y = _sine(440.0, n=64 * CFG.hop_length)
    S = LogMel(CFG)(y)[None]
    to_audio = MelToAudio(CFG)
    a, b = to_audio(S), to_audio(S)
    assert a.shape == (1, (S.shape[-1] - 1) * CFG.hop_length)
    assert torch.equal(a, b)  # zero-phase start: the loss is a function of the mel alone
    # Its spectrum is nearer the source's than a sine an octave up (Griffin-Lim with 2 iterations
    # from zero phase is rough, so only an ordering is asserted).
    src = y[None, : a.shape[1]]
    octave = _sine(880.0, n=a.shape[1])[None]
    assert multi_resolution_stft_loss(a, src) < multi_resolution_stft_loss(octave, src)


def test_label_cross_entropy_masked() -> None:
    B, T = 1, 4
    labels = torch.zeros(B, 3, T, dtype=torch.long)
    confident = LabelLogits(
        torch.full((B, T, 20), -20.0).index_fill_(2, torch.tensor([0]), 20.0),
        torch.full((B, T, 5), -20.0).index_fill_(2, torch.tensor([0]), 20.0),
        torch.full((B, T, 5), -20.0).index_fill_(2, torch.tensor([0]), 20.0),
    )
    mask = torch.ones(B, T, dtype=torch.bool)
    # Right with margin 40: CE = log(1 + 19 e^-40) ≈ 0 per head.
    assert label_cross_entropy(confident, labels, mask).item() == pytest.approx(0.0, abs=1e-6)
    uniform = LabelLogits(torch.zeros(B, T, 20), torch.zeros(B, T, 5), torch.zeros(B, T, 5))
    # Uniform: log 20 + log 5 + log 5 exactly.
    expected = math.log(20) + 2 * math.log(5)
    assert label_cross_entropy(uniform, labels, mask).item() == pytest.approx(expected, rel=1e-6)
    # (rel 1e-6: float32 log-softmax of equal logits is exact to a few ulps.)
    wrong = labels.clone()
    wrong[:, 0, :2] = 3
    half = mask.clone()
    half[:, :2] = False  # the wrong frames masked: back to ~0
    assert label_cross_entropy(confident, wrong, half).item() == pytest.approx(0.0, abs=1e-6)
    # Half the frames wrong by a margin of 40 nats: type CE averages about 20, far above 10.
    assert label_cross_entropy(confident, wrong, mask).item() > 10.0


def _loss_inputs(S_pred: torch.Tensor, S_raw: torch.Tensor, type_: int):
    B, F, T = S_raw.shape
    labels = torch.zeros(B, 3, T, dtype=torch.long)
    labels[:, 0] = type_
    mask = torch.ones(B, T, dtype=torch.bool)
    W = 4  # beats of the beat head's (uniform) logits
    beat = BeatLabels(
        torch.zeros(B, W, 20), torch.zeros(B, W, 5), torch.zeros(B, W, 5), mask[:, :W]
    )
    return S_pred, S_raw, labels, mask, beat, torch.zeros(B, 3, W, dtype=torch.long)


def test_supervised_loss_terms() -> None:
    y = torch.stack([_sine(440.0, n=40 * CFG.hop_length), _sine(660.0, n=40 * CFG.hop_length)])
    S = LogMel(CFG)(y)
    loss = SupervisedLoss(CFG)
    S_pred, S_raw, labels, tmask, beat, beat_labels = _loss_inputs(S, S, ActionType.KEEP)
    perfect = loss(S_pred, S_raw, S, labels, tmask, beat, beat_labels)
    assert perfect.l1.item() == 0.0 and perfect.edit_consistency.item() == 0.0
    assert perfect.msstft.item() == pytest.approx(0.0, abs=1e-6)  # same resynthesis both sides
    worse = loss(S + 1.0, S_raw, S, labels, tmask, beat, beat_labels)
    # An offset of exactly 1 nat on every bin: both L1 terms are 1 up to float32 rounding.
    assert worse.l1.item() == pytest.approx(1.0, rel=1e-5)
    assert worse.edit_consistency.item() == pytest.approx(1.0, rel=1e-5)
    assert worse.msstft.item() > 0.1  # e^1 louder everywhere: clearly visible to every STFT
    expected_total = 1.0 * worse.l1 + worse.msstft + 0.5 * worse.edit_consistency + worse.label
    assert worse.total.item() == pytest.approx(expected_total.item(), rel=1e-6)  # same floats
    # Edited (GAIN) frames: the prediction may differ from the input without a consistency cost.
    S_pred, S_raw, labels, tmask, beat, beat_labels = _loss_inputs(S + 1.0, S, ActionType.GAIN)
    gain = loss(S_pred, S_raw, S + 1.0, labels, tmask, beat, beat_labels)
    assert gain.edit_consistency.item() == 0.0 and gain.l1.item() == 0.0


def test_supervised_loss_gradients_are_finite() -> None:
    y = _sine(440.0, n=40 * CFG.hop_length)[None]
    S = LogMel(CFG)(y)
    S_pred = (S + 0.3).requires_grad_()
    S_pred_, S_raw, labels, tmask, beat, beat_labels = _loss_inputs(S_pred, S, ActionType.KEEP)
    tmask = tmask.clone()
    tmask[:, 10:20] = False  # cut frames must not break the waveform path
    terms = SupervisedLoss(CFG)(S_pred, S_raw, S, labels, tmask, beat, beat_labels)
    terms.total.backward()
    assert S_pred.grad is not None and torch.isfinite(S_pred.grad).all()
    # Every term ignores frames without a target: exactly no gradient reaches them.
    assert S_pred.grad[..., 10:20].abs().sum().item() == 0.0
    assert S_pred.grad.abs().sum().item() > 0.0


def test_class_weights_balance_the_classes() -> None:
    """Inverse-frequency weights (power 1) give each seen class the same total weight; power 0
    gives ones; an unseen class gets 0; the data's mean weight is 1."""
    counts = [torch.tensor([90.0, 10.0, 0.0])]
    (w,) = class_weights_from_counts(counts, power=1.0)
    assert w[2].item() == 0.0
    assert (w[0] * 90).item() == pytest.approx((w[1] * 10).item(), rel=1e-6)
    assert ((w * counts[0]).sum() / 100).item() == pytest.approx(1.0, rel=1e-6)
    (ones,) = class_weights_from_counts(counts, power=0.0)
    assert ones[:2].tolist() == pytest.approx([1.0, 1.0])
    # Weighted CE: a wrong rare beat counts as much as nine wrong common beats.
    labels = torch.tensor([[[0] * 9 + [1], [0] * 10, [0] * 10]])
    logits = LabelLogits(torch.zeros(1, 10, 2), torch.zeros(1, 10, 5), torch.zeros(1, 10, 5))
    logits.type[0, :, 0] = 20.0  # every beat says class 0: common beats right, the rare one wrong
    mask = torch.ones(1, 10, dtype=torch.bool)
    plain = label_cross_entropy(logits, labels, mask).item()
    weighted = label_cross_entropy(
        logits, labels, mask, class_weights=(w[:2], torch.ones(5), torch.ones(5))
    ).item()
    sizes_amounts = 2 * math.log(5)
    # unweighted: 1 of 10 beats wrong (CE about 20); weighted: half the weight on it.
    assert plain - sizes_amounts == pytest.approx(2.0, abs=0.01)
    assert weighted - sizes_amounts == pytest.approx(10.0, abs=0.01)
