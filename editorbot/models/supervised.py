"""The supervised baseline: raw log-mel + per-frame edit labels -> edited log-mel.

``EditEncoder`` runs a transformer encoder over the raw track's log-mel frames (the raw-only
path), a label head predicts per-beat edit labels (type, size, amount) from that path alone
(pooled on the beat grid, with the beat's place in the track; ``supervised_beats``), and learned
embeddings of the labels (true ones in training, predicted ones broadcast to frames on new
tracks) condition the latent. ``MelDecoder`` is a transformer decoder whose queries are the raw
frames and whose memory is the conditioned latent; it predicts a residual on the raw log-mel, so
an untrained decoder is the identity edit.

Plain PyTorch: no Ray here (the Ray Train loop is in ``editorbot.training.supervised_train``).
Transformers after Vaswani et al. 2017, https://arxiv.org/abs/1706.03762 (pre-norm variant).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from editorbot.audio.spectral import htk_mel_magnitude
from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES
from editorbot.models.supervised_beats import BeatLabelHead
from editorbot.models.supervised_parts import SupervisedConfig, encoder_stack, sinusoidal_positions

logger = logging.getLogger(__name__)

LOG_EPS = 1e-5
"""[linear mel magnitude] floor added before the log, so silence is log(1e-5) = -11.5, not -inf."""


class LabelLogits(NamedTuple):
    """Per-frame logits of the label head. Shapes (B, T, N_TYPES/N_SIZES/N_AMOUNTS)."""

    type: torch.Tensor
    size: torch.Tensor
    amount: torch.Tensor

    def argmax(self) -> torch.Tensor:
        """Most likely labels, (B, 3, T) long: rows are type, size, amount."""
        return torch.stack([self.type.argmax(-1), self.size.argmax(-1), self.amount.argmax(-1)], 1)


class SupervisedOutput(NamedTuple):
    """What :class:`SupervisedEditModel` returns."""

    S_edit: torch.Tensor
    """(B, F, T) predicted edited log-mel."""
    beat: Any
    """the beat head's ``BeatLabels`` of the tracks passed, or None."""


class LogMel(nn.Module):
    """Waveform -> natural-log mel magnitude, the representation the model and L1 loss use.

    Shape:
        y: (..., L) -> S: (..., F, T) with T = L // hop_length + 1.
    """

    def __init__(self, cfg: SupervisedConfig) -> None:
        super().__init__()
        self._cfg = cfg

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        cfg = self._cfg
        S = htk_mel_magnitude(
            y,
            sr=cfg.sr,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            n_mels=cfg.n_mels,
            f_max=cfg.f_max,
        )
        return torch.log(S + LOG_EPS)


class EditEncoder(nn.Module):
    """Transformer encoder over raw log-mel frames, conditioned on per-frame edit labels.

    Shape:
        S: (B, F, T) raw log-mel; labels: (B, 3, T) long (type, size, amount).
        ``encode_raw`` -> (B, T, D); ``condition`` -> (B, T, D).
    """

    def __init__(self, cfg: SupervisedConfig) -> None:
        super().__init__()
        D = cfg.encoder_dim
        self._in = nn.Linear(cfg.n_mels, D)
        self._encoder = encoder_stack(D, cfg)
        self._norm = nn.LayerNorm(D)
        self._type = nn.Embedding(N_TYPES, D)
        self._size = nn.Embedding(N_SIZES, D)
        self._amount = nn.Embedding(N_AMOUNTS, D)

    def encode_raw(self, S: torch.Tensor) -> torch.Tensor:
        """The raw-only path the label head reads (no labels involved)."""
        B, F, T = S.shape
        x = self._in(S.transpose(1, 2).contiguous())
        x = x + sinusoidal_positions(T, x.shape[-1], device=S.device)
        return self._norm(self._encoder(x))

    def condition(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Add the learned label embeddings to the raw-only latent."""
        B, three, T = labels.shape
        assert three == 3 and h.shape[:2] == (B, T), (h.shape, labels.shape)
        return h + self._type(labels[:, 0]) + self._size(labels[:, 1]) + self._amount(labels[:, 2])

    def forward(self, S: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encode_raw(S)
        return h, self.condition(h, labels)


class MelDecoder(nn.Module):
    """Transformer decoder predicting the edited log-mel as a residual on the raw log-mel.

    Queries are the raw frames, memory the label-conditioned latent. The output projection starts
    at zero, so the untrained decoder returns its input exactly.

    Shape:
        S: (B, F, T) raw log-mel; z: (B, T, D_enc) -> (B, F, T) edited log-mel.
    """

    def __init__(self, cfg: SupervisedConfig) -> None:
        super().__init__()
        Dd = cfg.decoder_dim
        self._in = nn.Linear(cfg.n_mels, Dd)
        self._memory = nn.Linear(cfg.encoder_dim, Dd)
        layer = nn.TransformerDecoderLayer(
            Dd, cfg.n_heads, cfg.ff_mult * Dd, cfg.dropout, batch_first=True, norm_first=True
        )
        self._decoder = nn.TransformerDecoder(layer, cfg.n_layers)
        self._norm = nn.LayerNorm(Dd)
        self._out = nn.Linear(Dd, cfg.n_mels)
        nn.init.zeros_(self._out.weight)
        nn.init.zeros_(self._out.bias)

    def forward(self, S: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        B, F, T = S.shape
        q = self._in(S.transpose(1, 2).contiguous())
        q = q + sinusoidal_positions(T, q.shape[-1], device=S.device)
        x = self._norm(self._decoder(q, self._memory(z)))
        S_edit = S + self._out(x).transpose(1, 2)
        assert S_edit.shape == (B, F, T)
        return S_edit


class SupervisedEditModel(nn.Module):
    """EditEncoder + BeatLabelHead + MelDecoder.

    Shape:
        ``forward``: S (B, F, T) raw log-mel, labels (B, 3, T) long per-frame labels (true ones in
        training, the beat head's broadcast to frames on a new track), optionally whole tracks
        for the beat head (one forward, so DDP syncs every gradient) -> SupervisedOutput.
        ``beat_logits``: B x BeatTrack (whole tracks) -> BeatLabels (B, W, ·).
    """

    def __init__(self, cfg: SupervisedConfig) -> None:
        super().__init__()
        self.config = cfg
        self._encoder = EditEncoder(cfg)
        self._label_head = BeatLabelHead(cfg)
        self._decoder = MelDecoder(cfg)

    def forward(
        self, S: torch.Tensor, labels: torch.Tensor, tracks: list[Any] | None = None
    ) -> SupervisedOutput:
        B, F, T = S.shape
        if self.config.n_mels != F:
            raise ValueError(
                f"expected {self.config.n_mels} mel bins, got input of shape {S.shape}"
            )
        h = self._encoder.encode_raw(S)
        S_edit = self._decoder(S, self._encoder.condition(h, labels))
        return SupervisedOutput(S_edit, None if tracks is None else self.beat_logits(tracks))

    def beat_logits(self, tracks: list[Any]) -> Any:
        """Per-beat label logits of whole tracks (``supervised_beats.BeatTrack`` each), from
        audio alone (what ``edit`` uses on a new track)."""
        return self._label_head(self._encoder, tracks)


CHECKPOINT_KIND = "supervised"
CHECKPOINT_JSON = "editorbot_checkpoint.json"
WEIGHTS_FILE = "weights.pt"


def save_checkpoint(
    directory: str | Path, model: SupervisedEditModel, *, extra: dict[str, Any] | None = None
) -> Path:
    """Write a self-describing checkpoint folder: ``editorbot_checkpoint.json`` + weights.

    Each file is written atomically; the JSON (written last) names the kind, the editorbot
    version and the full config, so :func:`load_checkpoint` needs nothing else.
    """
    from editorbot import __version__
    from editorbot.atomic import atomic_path, write_text_atomic

    directory = Path(directory)
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    meta = {
        "kind": CHECKPOINT_KIND,
        "editorbot_version": __version__,
        "model_class": type(model).__name__,
        "config": dataclasses.asdict(model.config),
        "weights": WEIGHTS_FILE,
        **(extra or {}),
    }
    write_text_atomic(directory / CHECKPOINT_JSON, json.dumps(meta, indent=2) + "\n")
    return directory


def load_checkpoint(directory: str | Path) -> tuple[SupervisedEditModel, dict[str, Any]]:
    """Rebuild the model from a checkpoint folder (weights read with ``weights_only=True``).

    Raises:
        CheckpointError: missing files, another kind of checkpoint, or weights that do not fit.
    """
    from editorbot.config import from_dict
    from editorbot.errors import CheckpointError, ParameterError
    from editorbot.safe_load import build_checked, inside, load_tensors, read_json_object

    directory = Path(directory)
    meta_path = directory / CHECKPOINT_JSON
    if not meta_path.is_file():
        raise CheckpointError(
            f"{meta_path}: cannot read checkpoint description (no such file); point "
            "--checkpoint at a folder written by `editorbot train supervised` (e.g. "
            "models/supervised/best)"
        )
    meta = read_json_object(meta_path)
    if meta.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{meta_path}: kind {meta.get('kind')!r}, expected 'supervised'")
    if not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{meta_path}: field 'config' missing or not an object; re-train")
    try:
        cfg = from_dict(SupervisedConfig, meta["config"], source=f"{meta_path}: config")
    except ParameterError as e:
        raise CheckpointError(str(e)) from e
    state = load_tensors(inside(directory, meta.get("weights"), source=str(meta_path)))
    # Shapes checked on the meta device first: a config with huge sizes allocates nothing.
    model = build_checked(lambda: SupervisedEditModel(cfg), state, source=str(meta_path))
    return model.eval(), meta
