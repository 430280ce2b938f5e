"""The supervised baseline's config and the transformer pieces its encoder and beat head share.

Its own module so that :mod:`editorbot.models.supervised` (the model) and
:mod:`editorbot.models.supervised_beats` (its beat head) both import them without importing each
other. Transformers after Vaswani et al. 2017, https://arxiv.org/abs/1706.03762 (pre-norm).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SupervisedConfig:
    """The supervised model, its mel front end and its loss weights (seed defaults)."""

    sr: int = 22050
    """[Hz] sample rate the mel front end runs at (the analysis rate)."""
    n_fft: int = 1024
    """[samples] FFT size of the mel front end."""
    hop_length: int = 256
    """[samples] hop between mel frames (11.6 ms at 22,050 Hz)."""
    n_mels: int = 80
    """[bins] mel bands F."""
    f_max: float = 11025.0
    """[Hz] top of the mel filterbank."""
    encoder_dim: int = 512
    """[units] encoder width D."""
    decoder_dim: int = 512
    """[units] decoder width."""
    n_layers: int = 6
    """[layers] transformer layers in the encoder and, separately, in the decoder."""
    n_heads: int = 8
    """[heads] attention heads H in every layer."""
    ff_mult: int = 4
    """[x width] feed-forward width as a multiple of the layer width."""
    dropout: float = 0.1
    """[probability] dropout in every transformer layer."""
    crop_frames: int = 256
    """[frames] length T of a training crop (about 3 s at the defaults)."""
    l1_weight: float = 1.0
    """[weight] L1 on log-mel."""
    msstft_weight: float = 1.0
    """[weight] multi-resolution STFT loss on resynthesised waveforms."""
    edit_consistency_weight: float = 0.5
    """[weight] unedited (KEEP) frames equal to the input."""
    label_weight: float = 1.0
    """[weight] label-head cross-entropy (type + size + amount), per beat."""
    beat_layers: int = 2
    """[layers] transformer layers across the beats of a track in the label head."""
    class_weight_power: float = 0.5
    """[exponent] label classes weighted by (training frequency) ** -power (0: unweighted)."""
    msstft_fft_sizes: tuple[int, ...] = (512, 1024, 2048)
    """[samples] FFT sizes of the multi-resolution STFT loss (hops are 1/4, windows equal)."""
    griffin_lim_iters: int = 8
    """[iterations] Griffin-Lim iterations of the mel -> audio resynthesis inside the loss."""

    @classmethod
    def tiny(cls) -> SupervisedConfig:
        """A few-thousand-parameter configuration for tests and smoke runs."""
        return cls(
            n_mels=32,
            encoder_dim=32,
            decoder_dim=32,
            n_layers=1,
            n_heads=2,
            ff_mult=2,
            dropout=0.0,
            crop_frames=64,
            griffin_lim_iters=2,
        )

    def replace(self, **changes: object) -> SupervisedConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def sinusoidal_positions(T: int, D: int, *, device: torch.device) -> torch.Tensor:
    """Fixed sinusoidal position codes (Vaswani et al. 2017), any length. Shape (T, D)."""
    position = torch.arange(T, device=device, dtype=torch.float32)[:, None]
    # [1/frames]: geometric ladder of frequencies from 1 to 1/10000.
    inv_freq = torch.exp(
        torch.arange(0, D, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / D)
    )
    pe = torch.zeros(T, D, device=device)
    pe[:, 0::2] = torch.sin(position * inv_freq)
    pe[:, 1::2] = torch.cos(position * inv_freq)[:, : D // 2]
    return pe


def encoder_stack(D: int, cfg: SupervisedConfig) -> nn.TransformerEncoder:
    """Pre-norm transformer encoder layers of width ``D`` and the config's heads and depth."""
    layer = nn.TransformerEncoderLayer(
        D, cfg.n_heads, cfg.ff_mult * D, cfg.dropout, batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
