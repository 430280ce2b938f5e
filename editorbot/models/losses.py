"""Losses of the supervised baseline: log-mel L1, multi-resolution STFT, edit consistency, labels.

The label term is per beat (the beat head's logits on whole tracks), optionally class-weighted.

The multi-resolution STFT loss (spectral convergence + log STFT magnitude, averaged over FFT sizes
512/1024/2048) follows Yamamoto et al. 2020, "Parallel WaveGAN", https://arxiv.org/abs/1910.11480.
It is computed on waveforms, so both the predicted and the target log-mel are turned back into
audio by the same differentiable resynthesis (:class:`MelToAudio`): the pseudo-inverse of the mel
filterbank (the least-squares inverse torchaudio's ``InverseMelScale`` solves for, computed once)
followed by a fixed number of Griffin-Lim iterations from zero phase (Griffin & Lim 1984). Both
sides go through the identical deterministic path, so identical mels give exactly zero and every
difference the STFT can see is penalised; gradients flow through the iterations.

Every loss takes ``reduction`` in {"mean", "sum", "none"}; "none" returns one value per example.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as Fn
from torch import nn

from editorbot.audio.spectral import htk_mel_basis
from editorbot.editing.actions import ActionType
from editorbot.errors import ParameterError
from editorbot.models.supervised import LOG_EPS, SupervisedConfig

logger = logging.getLogger(__name__)

REDUCTIONS = ("mean", "sum", "none")
_EPS = 1e-7  # [magnitude] keeps log and division finite on silent frames


def _reduce(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    if reduction == "none":
        return per_example
    raise ParameterError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def masked_l1(
    S_pred: torch.Tensor, S_true: torch.Tensor, mask: torch.Tensor, *, reduction: str = "mean"
) -> torch.Tensor:
    """Mean absolute log-mel error over the frames where ``mask`` is true.

    Shape:
        S_pred, S_true: (B, F, T); mask: (B, T) bool -> (B,) for "none", else a scalar.
    """
    B, F, T = S_pred.shape
    m = mask.to(S_pred.dtype)[:, None, :]
    err = ((S_pred - S_true).abs() * m).sum(dim=(1, 2))
    return _reduce(err / (m.sum(dim=(1, 2)) * F).clamp_min(1.0), reduction)


class MelToAudio(nn.Module):
    """Differentiable log-mel -> waveform: mel pseudo-inverse + Griffin-Lim from zero phase.

    Shape:
        S: (B, F, T) log-mel -> y: (B, L) with L = (T - 1) * hop_length.
    """

    _pinv: torch.Tensor
    _window: torch.Tensor

    def __init__(self, cfg: SupervisedConfig) -> None:
        super().__init__()
        fb = htk_mel_basis(sr=cfg.sr, n_fft=cfg.n_fft, n_mels=cfg.n_mels, f_max=cfg.f_max)
        self.register_buffer("_pinv", torch.linalg.pinv(fb.T), persistent=False)  # (n_freqs, F)
        self.register_buffer("_window", torch.hann_window(cfg.n_fft), persistent=False)
        self._cfg = cfg

    def forward(self, S: torch.Tensor) -> torch.Tensor:
        import torchaudio.functional as AF

        B, F, T = S.shape
        mel = (S.exp() - LOG_EPS).clamp_min(0.0)
        mag = (self._pinv @ mel).clamp_min(0.0)  # (B, n_freqs, T)
        cfg = self._cfg
        return AF.griffinlim(
            mag,
            self._window,
            cfg.n_fft,
            cfg.hop_length,
            cfg.n_fft,
            power=1.0,
            n_iter=cfg.griffin_lim_iters,
            momentum=0.99,
            length=(T - 1) * cfg.hop_length,
            rand_init=False,
        )


def _stft_mag(y: torch.Tensor, n_fft: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=y.device, dtype=y.dtype)
    X = torch.stft(y, n_fft, hop_length=n_fft // 4, window=window, return_complex=True)
    return (X.real.square() + X.imag.square()).clamp_min(_EPS).sqrt()


def multi_resolution_stft_loss(
    y_pred: torch.Tensor,
    y_true: torch.Tensor,
    *,
    fft_sizes: tuple[int, ...] = (512, 1024, 2048),
    reduction: str = "mean",
) -> torch.Tensor:
    """Spectral convergence + log-magnitude L1, averaged over FFT sizes (Yamamoto et al. 2020).

    Shape:
        y_pred, y_true: (B, L) -> (B,) for "none", else a scalar.
    """
    B, L = y_pred.shape
    total = y_pred.new_zeros(B)
    for n_fft in fft_sizes:
        P, Q = _stft_mag(y_pred, n_fft), _stft_mag(y_true, n_fft)
        sc = torch.linalg.norm((Q - P).flatten(1), dim=1) / torch.linalg.norm(
            Q.flatten(1), dim=1
        ).clamp_min(_EPS)
        log_mag = (Q.log() - P.log()).abs().flatten(1).mean(dim=1)
        total = total + sc + log_mag
    return _reduce(total / len(fft_sizes), reduction)


def label_cross_entropy(
    logits: Any,
    labels: torch.Tensor,
    mask: torch.Tensor,
    *,
    class_weights: Sequence[torch.Tensor] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Sum of the type, size and amount cross-entropies over the positions where ``mask`` is true.

    Positions are beats for the beat head (frames work the same way). With ``class_weights``
    each position counts by the weight of its true class (a weighted mean per example).

    Shape:
        logits: ``.type``/``.size``/``.amount`` of (B, N, ·); labels: (B, 3, N) long;
        mask: (B, N) bool; class_weights: 3 tensors of (N_TYPES,), (N_SIZES,), (N_AMOUNTS,)
        -> (B,) for "none", else a scalar.
    """
    B, three, N = labels.shape
    m = mask.to(logits.type.dtype)
    total = logits.type.new_zeros(B)
    for i, lg in enumerate((logits.type, logits.size, logits.amount)):
        ce = Fn.cross_entropy(lg.transpose(1, 2), labels[:, i], reduction="none")  # (B, N)
        w = m if class_weights is None else m * class_weights[i].to(m)[labels[:, i]]
        total = total + (ce * w).sum(1) / w.sum(1).clamp_min(1e-6)
    return _reduce(total, reduction)


def class_weights_from_counts(
    counts: Sequence[torch.Tensor], *, power: float
) -> tuple[torch.Tensor, ...]:
    """Per-class weights (count / total) ** -power, scaled so the labelled data's mean weight is 1.

    Classes never seen get weight 0 (they are never a target). ``power`` 0 gives all ones.
    """
    out = []
    for c in counts:
        c = c.to(torch.float64)
        freq = c / c.sum().clamp_min(1.0)
        w = torch.where(c > 0, freq.clamp_min(1e-12) ** -power, torch.zeros_like(freq))
        w = w / (w * freq).sum().clamp_min(1e-12)
        out.append(w.to(torch.float32))
    return tuple(out)


class LossTerms(NamedTuple):
    """Every term (already reduced) and their weighted total."""

    total: torch.Tensor
    l1: torch.Tensor
    msstft: torch.Tensor
    edit_consistency: torch.Tensor
    label: torch.Tensor


class SupervisedLoss(nn.Module):
    """The weighted sum the supervised baseline trains on (weights from :class:`SupervisedConfig`).

    Args:
        cfg: the model config (loss weights, mel settings).
        class_weights: per-class weights of the label cross-entropy (type, size, amount), e.g.
            from :func:`class_weights_from_counts`; None weighs every beat alike.
        reduction: "mean", "sum" or "none".

    Shape:
        S_pred, S_raw, S_true: (B, F, T); labels: (B, 3, T) long per-frame labels of the crops;
        target_mask: (B, T) bool, false on cut frames (no target) and padding;
        beat_logits: the beat head's output for B' whole tracks (``.mask`` (B', W) real beats);
        beat_labels: (B', 3, W) long.
    """

    def __init__(
        self,
        cfg: SupervisedConfig,
        *,
        class_weights: Sequence[torch.Tensor] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        _reduce(torch.zeros(1), reduction)  # validate early
        self._cfg = cfg
        self._reduction = reduction
        self._class_weights = None if class_weights is None else tuple(class_weights)
        self._to_audio = MelToAudio(cfg)

    def forward(
        self,
        S_pred: torch.Tensor,
        S_raw: torch.Tensor,
        S_true: torch.Tensor,
        labels: torch.Tensor,
        target_mask: torch.Tensor,
        beat_logits: Any,
        beat_labels: torch.Tensor,
    ) -> LossTerms:
        cfg, red = self._cfg, self._reduction
        l1 = masked_l1(S_pred, S_true, target_mask, reduction=red)
        msstft = self._msstft(S_pred, S_true, target_mask)
        unedited = (labels[:, 0] == ActionType.KEEP) & target_mask
        consistency = masked_l1(S_pred, S_raw, unedited, reduction=red)
        label = label_cross_entropy(
            beat_logits,
            beat_labels,
            beat_logits.mask,
            class_weights=self._class_weights,
            reduction="mean" if red == "none" else red,
        )
        total = (
            cfg.l1_weight * l1
            + cfg.msstft_weight * msstft
            + cfg.edit_consistency_weight * consistency
            + cfg.label_weight * label
        )
        return LossTerms(total, l1, msstft, consistency, label)

    def _msstft(
        self, S_pred: torch.Tensor, S_true: torch.Tensor, target_mask: torch.Tensor
    ) -> torch.Tensor:
        """The waveform term; skipped (zero) when its weight is 0, which saves the resynthesis."""
        if self._cfg.msstft_weight == 0.0:
            return _reduce(S_pred.new_zeros(S_pred.shape[0]), self._reduction)
        # Frames with no target (cut) are copied from the target side into the prediction, so
        # they add nothing to the waveform loss.
        S_pred_filled = torch.where(target_mask[:, None, :], S_pred, S_true.detach())
        return multi_resolution_stft_loss(
            self._to_audio(S_pred_filled),
            self._to_audio(S_true),
            fft_sizes=self._cfg.msstft_fft_sizes,
            reduction=self._reduction,
        )
