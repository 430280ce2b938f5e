"""The supervised baseline's label head on the beat grid: beat-synchronous pooling + beat context.

An editor decides per beat, bar and phrase, from where a passage sits in the song (intro, outro)
and how it compares with the rest of it (a quiet verse). A per-frame head on a 64-frame crop (under
one second) sees neither, so it can only learn the majority label. This head instead

1. encodes the whole track with the raw-only path of ``EditEncoder`` in windows of ``crop_frames``
   (the length it is trained on; attention cost grows with T squared),
2. pools the frame latent and the raw log-mel over each beat's frames (beat-synchronous pooling),
3. adds each beat's context: its position in the track, its place in the bar and phrase, and its
   spectrum relative to the track's mean (the song-relative level a radio editor listens for),
4. runs a transformer encoder across all the beats of the track, and predicts per-beat
   type / size / amount logits.

Beat grid convention (as the training data): beat i's frames are [beat_frame[i],
beat_frame[i + 1]); frames before beat 0 belong to beat 0, after the last beat to the last beat.

Plain PyTorch, no Ray.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch
from torch import nn

from editorbot.audio.beats import BARS_PER_PHRASE, BEATS_PER_BAR
from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES
from editorbot.models.supervised_parts import SupervisedConfig, encoder_stack, sinusoidal_positions


class RawEncoder(Protocol):
    """What the head needs of the model's encoder: its raw-only path (``EditEncoder``)."""

    def encode_raw(self, S: torch.Tensor) -> torch.Tensor:
        """(B, F, T) raw log-mel -> (B, T, D) latent."""
        ...


N_CONTEXT_FIXED = 2 + BEATS_PER_BAR + BARS_PER_PHRASE + 1
"""Context channels besides the relative spectrum: position and remainder in the track, beat in
bar (one-hot), bar in phrase (one-hot), relative loudness."""


class BeatTrack(NamedTuple):
    """One track's input to the beat head.

    S: (F, T) raw log-mel; beat_frame: (W,) long, first frame of each beat; downbeat_phase: the
    index of the first downbeat among beats 0..3.
    """

    S: torch.Tensor
    beat_frame: torch.Tensor
    downbeat_phase: int


def frame_windows(S: torch.Tensor, W: int) -> torch.Tensor:
    """Cut (F, T) into (n_win, F, W) windows; the last is padded with the track's minimum."""
    F, T = S.shape
    n_win = -(-T // W)
    padded = S.new_full((F, n_win * W), float(S.min()))
    padded[:, :T] = S
    return padded.reshape(F, n_win, W).permute(1, 0, 2).contiguous()


def beat_of_frame(beat_frame: torch.Tensor, T: int) -> torch.Tensor:
    """The beat each of T frames belongs to (grid convention above). Shape (T,) long."""
    frames = torch.arange(T, device=beat_frame.device)
    idx = torch.searchsorted(beat_frame.contiguous(), frames, right=True) - 1
    return idx.clamp_min(0)


def _pool(x: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Mean of the rows of x (T, C) by group index (T,) into (n, C); empty groups are 0."""
    sums = x.new_zeros(n, x.shape[1]).index_add_(0, index, x)
    counts = torch.bincount(index, minlength=n).clamp_min(1).to(x.dtype)[:, None]
    return sums / counts


def beat_context(S_beat: torch.Tensor, downbeat_phase: int) -> torch.Tensor:
    """Per-beat context channels from the beat-pooled log-mel (W, F) -> (W, F + N_CONTEXT_FIXED)."""
    W, F = S_beat.shape
    i = torch.arange(W, device=S_beat.device)
    pos = (i.to(S_beat.dtype) / max(W - 1, 1))[:, None]
    metre = i - downbeat_phase
    in_bar = nn.functional.one_hot(metre % BEATS_PER_BAR, BEATS_PER_BAR).to(S_beat.dtype)
    bar = nn.functional.one_hot((metre // BEATS_PER_BAR) % BARS_PER_PHRASE, BARS_PER_PHRASE).to(
        S_beat.dtype
    )
    relative = S_beat - S_beat.mean(0, keepdim=True)  # [nats] the beat against the whole track
    loudness = relative.mean(1, keepdim=True)
    return torch.cat([pos, 1.0 - pos, in_bar, bar, loudness, relative], dim=1)


class BeatLabels(NamedTuple):
    """Per-beat logits, padded to the longest track: (B, W, N_TYPES/N_SIZES/N_AMOUNTS), and the
    (B, W) bool mask of real beats."""

    type: torch.Tensor
    size: torch.Tensor
    amount: torch.Tensor
    mask: torch.Tensor


class BeatLabelHead(nn.Module):
    """Beat-synchronous label head (module docstring).

    Shape:
        tracks: B x BeatTrack -> BeatLabels with W = the most beats of any track.
    """

    def __init__(self, cfg: SupervisedConfig) -> None:
        super().__init__()
        D = cfg.encoder_dim
        self._crop = cfg.crop_frames
        self._in = nn.Linear(D + cfg.n_mels + N_CONTEXT_FIXED, D)
        self._beats = encoder_stack(D, cfg.replace(n_layers=cfg.beat_layers))
        self._norm = nn.LayerNorm(D)
        self._out = nn.Linear(D, N_TYPES + N_SIZES + N_AMOUNTS)

    def tokens(self, encoder: RawEncoder, track: BeatTrack) -> torch.Tensor:
        """One track's beat tokens before the beat transformer. Shape (W, D)."""
        F, T = track.S.shape
        windows = frame_windows(track.S, self._crop)  # (n_win, F, crop)
        h = encoder.encode_raw(windows)  # (n_win, crop, D)
        h = h.reshape(-1, h.shape[-1])[:T]
        index = beat_of_frame(track.beat_frame, T)
        W = len(track.beat_frame)
        S_beat = _pool(track.S.transpose(0, 1), index, W)
        ctx = beat_context(S_beat, track.downbeat_phase)
        return self._in(torch.cat([_pool(h, index, W), ctx], dim=1))

    def forward(self, encoder: RawEncoder, tracks: list[BeatTrack]) -> BeatLabels:
        toks = [self.tokens(encoder, t) for t in tracks]
        W = max(len(x) for x in toks)
        D = toks[0].shape[1]
        x = toks[0].new_zeros(len(toks), W, D)
        mask = torch.zeros(len(toks), W, dtype=torch.bool, device=x.device)
        for b, t in enumerate(toks):
            x[b, : len(t)] = t
            mask[b, : len(t)] = True
        x = x + sinusoidal_positions(W, D, device=x.device)
        y = self._norm(self._beats(x, src_key_padding_mask=~mask))
        t, s, a = self._out(y).split([N_TYPES, N_SIZES, N_AMOUNTS], dim=-1)
        return BeatLabels(t, s, a, mask)
