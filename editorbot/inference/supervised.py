"""Inference with the supervised baseline: per-beat decisions from the label head, resynthesis.

``predict_decisions`` reads a new track, tracks its beat grid, runs the beat label head on its
log-mel (raw-only path pooled per beat, with each beat's place in the track: no labels needed),
and decodes the most likely decision list the edit language allows (each beat scored with the
label of the decision that consumes it, as the head was trained). The result is a valid
``DecisionList`` that the renderer (and ``editorbot edit``) turns into audio.

``resynthesise`` runs the full model (label head -> label embeddings -> decoder) and turns the
predicted edited log-mel back into audio with the same mel pseudo-inverse + Griffin-Lim the loss
uses (more iterations), for ``--mel-output`` listening.

No Ray here: a checkpoint loads and predicts in a plain process.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from editorbot.editing.actions import (
    N_AMOUNTS,
    N_SIZES,
    N_TYPES,
    ActionAmount,
    ActionSize,
    ActionType,
)
from editorbot.models.supervised import SupervisedConfig, SupervisedEditModel, load_checkpoint

if TYPE_CHECKING:
    from editorbot.editing.decisions import Decision, DecisionList

logger = logging.getLogger(__name__)

_FLOOR = -1e9  # [log-prob] masked choices; finite so argmax over an all-masked row stays defined


def predict_decisions(
    checkpoint_dir: str | Path, audio_path: str | Path, *, beat_times: np.ndarray | None = None
) -> DecisionList:
    """Predict an edit decision list for ``audio_path`` with a supervised checkpoint.

    Args:
        checkpoint_dir: a folder written by ``editorbot train supervised`` (e.g. ``.../best``).
        audio_path: the raw track.
        beat_times: [s] the track's beat grid; tracked from the audio when ``None``.

    Returns:
        A ``DecisionList`` valid under the action masks (one decision per cursor position).

    Raises:
        CheckpointError: the checkpoint does not load. AudioLoadError: the audio cannot be used.
    """
    from editorbot.editing.decisions import DecisionList

    lp, beat_times, phase, sr, meta = predict_beat_log_probs(
        checkpoint_dir, audio_path, beat_times=beat_times
    )
    decisions = decode_decisions(lp, n_beats=len(beat_times), downbeat_phase=phase)
    return DecisionList(
        sample_rate=sr,
        beat_times=np.asarray(beat_times, dtype=np.float64),
        decisions=tuple(decisions),
        meta={"source": "supervised", "checkpoint": str(checkpoint_dir), **_epoch(meta)},
        downbeat_phase=phase,
    )


def predict_beat_log_probs(
    checkpoint_dir: str | Path, audio_path: str | Path, *, beat_times: np.ndarray | None = None
) -> tuple[list[np.ndarray], np.ndarray, int, int, dict[str, Any]]:
    """The label head's per-beat log-probabilities on a track (what ``predict_decisions`` walks).

    Returns:
        (:func:`beat_log_probs`, beat_times [s], downbeat phase, the audio's rate [Hz], the
        checkpoint's meta).
    """
    from editorbot.audio.beats import track_beats
    from editorbot.audio.io import AudioConfig, analysis_signal, open_audio

    model, meta = load_checkpoint(checkpoint_dir)
    cfg = model.config
    audio = open_audio(audio_path)  # a WAV/FLAC stays on disk, read a block at a time
    y = analysis_signal(audio, config=AudioConfig(analysis_sr=cfg.sr))
    phase = 0
    if beat_times is None:
        grid = track_beats(y, sr=cfg.sr, name=str(audio_path))
        beat_times, phase = grid.beat_times, grid.downbeat_phase
    beat_frame = np.round(np.asarray(beat_times) * cfg.sr / cfg.hop_length).astype(np.int64)
    lp = beat_log_probs(model, _log_mel(y, cfg), beat_frame, downbeat_phase=phase)
    return lp, np.asarray(beat_times, np.float64), phase, audio.sr, meta


def _epoch(meta: dict[str, Any]) -> dict[str, Any]:
    return {"epoch": meta["epoch"]} if "epoch" in meta else {}


def _log_mel(y: np.ndarray, cfg: SupervisedConfig) -> torch.Tensor:
    from editorbot.training.supervised_data import log_mel

    return torch.from_numpy(log_mel(y, cfg))


@torch.no_grad()
def beat_log_probs(
    model: SupervisedEditModel,
    S: torch.Tensor,
    beat_frame: np.ndarray,
    *,
    downbeat_phase: int = 0,
) -> list[np.ndarray]:
    """The beat head's log-probabilities of type, size and amount for every beat of a track.

    Args:
        model: a supervised model (``load_checkpoint``).
        S: [shape=(F, T)] the track's raw log-mel (``supervised_data.log_mel``).
        beat_frame: [shape=(n_beats,)] first frame of each beat (grid convention of the data).
        downbeat_phase: index of the first downbeat among beats 0..3.

    Returns:
        [(n_beats, N_TYPES), (n_beats, N_SIZES), (n_beats, N_AMOUNTS)] float64 log-probs.
    """
    from editorbot.models.supervised_beats import BeatTrack

    model.eval()
    n_beats = len(beat_frame)
    track = BeatTrack(S, torch.as_tensor(np.asarray(beat_frame), dtype=torch.long), downbeat_phase)
    out = model.beat_logits([track])
    lp = [lg[0].log_softmax(-1).double().numpy() for lg in (out.type, out.size, out.amount)]
    assert lp[0].shape == (n_beats, N_TYPES) and lp[1].shape == (n_beats, N_SIZES)
    assert lp[2].shape == (n_beats, N_AMOUNTS)
    return lp


def decode_decisions(lp: list[np.ndarray], *, n_beats: int, downbeat_phase: int) -> list[Decision]:
    """The most likely decision list under the label head's per-beat log-probabilities.

    Each beat was trained with the label of the decision that consumed it, so a decision list
    scores the sum over beats of its labels' log-probabilities
    (:func:`editorbot.editing.duration_decode.most_likely_actions` with ``per_beat``): a size
    the head predicts at one beat cannot swallow following beats whose type it reads otherwise.
    A decision's confidence is the geometric mean over its beats of the head's probability of
    its (type, size, amount).
    """
    from editorbot.editing.duration_decode import most_likely_actions, supervised_log_probs

    actions = most_likely_actions(
        supervised_log_probs(lp), n_beats=n_beats, downbeat_phase=downbeat_phase
    )
    return decisions_with_confidence(actions, lp, n_beats=n_beats, downbeat_phase=downbeat_phase)


def decisions_with_confidence(
    actions: np.ndarray, lp: list[np.ndarray], *, n_beats: int, downbeat_phase: int
) -> list[Decision]:
    """``actions`` [shape=(k, 3)] as decisions along the cursor, each with the geometric-mean
    per-beat probability of its labels over the raw beats it consumes (at its cursor for a
    JUMP_BACK, which consumes none)."""
    from editorbot.editing.actions import initial_state, step
    from editorbot.editing.decisions import Decision

    type_lp, size_lp, amount_lp = lp
    state = initial_state(n_beats, downbeat_phase=downbeat_phase)
    decisions = []
    for t, s, a in np.asarray(actions, np.int64).tolist():
        c = state.cursor
        state, _ = step(state, t, s, a)
        beats = np.arange(c, max(state.cursor, c + 1))
        mean_lp = float(np.mean(type_lp[beats, t] + size_lp[beats, s] + amount_lp[beats, a]))
        confidence = min(float(np.exp(mean_lp)), 1.0)
        decisions.append(Decision(c, ActionType(t), ActionSize(s), ActionAmount(a), confidence))
    return decisions


@torch.no_grad()
def decode_mel(
    model: SupervisedEditModel, S: torch.Tensor, beat_frame: np.ndarray, *, downbeat_phase: int = 0
) -> torch.Tensor:
    """The decoder's edited log-mel of a whole track, conditioned on the beat head's labels.

    The per-beat argmax labels are broadcast to the beat's frames and the decoder runs in windows
    of ``crop_frames`` (the length it was trained on), in the raw track's time line.

    Shape:
        S: (F, T) raw log-mel -> (F, T) edited log-mel.
    """
    from editorbot.models.supervised_beats import beat_of_frame, frame_windows

    model.eval()
    F, T = S.shape
    lp = beat_log_probs(model, S, beat_frame, downbeat_phase=downbeat_phase)
    beat_labels = torch.from_numpy(np.stack([p.argmax(-1) for p in lp]))  # (3, n_beats)
    frames = beat_of_frame(torch.as_tensor(np.asarray(beat_frame), dtype=torch.long), T)
    W = model.config.crop_frames
    windows = frame_windows(S, W)
    n_win = windows.shape[0]
    labels = torch.zeros(3, n_win * W, dtype=torch.long)
    labels[:, :T] = beat_labels[:, frames]
    labels[:, T:] = labels[:, T - 1 : T]
    labels = labels.reshape(3, n_win, W).permute(1, 0, 2).contiguous()
    S_edit = model(windows, labels).S_edit.permute(1, 0, 2).reshape(F, -1)[:, :T]
    assert S_edit.shape == (F, T)
    return S_edit


@torch.no_grad()
def resynthesise(
    checkpoint_dir: str | Path, audio_path: str | Path, out_path: str | Path, *, n_iter: int = 32
) -> Path:
    """Write the decoder's edited mel, resynthesised to audio, to ``out_path`` (mono, cfg.sr).

    The decoder edits frame by frame in the raw track's time line (structural edits are the
    renderer's job), so this is for listening to what the decoder learned of the effects.
    """
    from editorbot.audio.beats import track_beats
    from editorbot.audio.io import AudioConfig, analysis_signal, load_audio, write_audio
    from editorbot.models.losses import MelToAudio

    model, _ = load_checkpoint(checkpoint_dir)
    cfg = model.config
    y = analysis_signal(load_audio(audio_path), config=AudioConfig(analysis_sr=cfg.sr))
    grid = track_beats(y, sr=cfg.sr, name=str(audio_path))
    beat_frame = np.round(grid.beat_times * cfg.sr / cfg.hop_length).astype(np.int64)
    S_edit = decode_mel(model, _log_mel(y, cfg), beat_frame, downbeat_phase=grid.downbeat_phase)
    y_out = MelToAudio(cfg.replace(griffin_lim_iters=n_iter))(S_edit[None])[0].numpy()
    peak = float(np.abs(y_out).max())
    if peak > 1.0:  # Griffin-Lim does not bound the level; keep the file unclipped
        y_out = y_out / peak
    return write_audio(out_path, y_out[None, :], sr=cfg.sr, protect=(audio_path,))
