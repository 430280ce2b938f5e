"""The report's picture of what the supervised decoder learned: its mel beside the human edit's.

The decoder edits in the raw track's time line (structural edits are the renderer's job), so the
human edit is shown twice: as it is, and mapped back onto the raw time line through the reference
decisions (each raw frame shows the edit frame it became; cut frames are blank) — the target the
decoder was trained towards. Panels, top to bottom: raw, decoder output, human edit on the raw
time line, human edit. All in the model's own log-mel (natural log of mel magnitude).

Shape:
    every panel [shape=(F, T)] with F = the model's ``n_mels``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from editorbot.atomic import atomic_path

logger = logging.getLogger(__name__)


def decoded_mels(ckpt: Path, raw: Path, edit: Path, ref: Any) -> dict[str, np.ndarray]:
    """The four panels' log-mels for one pair (module docstring); ``ref`` its reference
    ``DecisionList`` (with ``beat_times``), whose grid the decoder is conditioned on too."""
    import torch

    from editorbot.audio.io import AudioConfig, analysis_signal, load_audio
    from editorbot.editing.render import render
    from editorbot.inference.supervised import decode_mel
    from editorbot.models.supervised import load_checkpoint
    from editorbot.training.supervised_data import (
        aligned_target,
        beat_frames,
        log_mel,
        raw_to_output_samples,
    )

    model, _ = load_checkpoint(ckpt)
    cfg = model.config
    audio_cfg = AudioConfig(analysis_sr=cfg.sr)
    y_raw = analysis_signal(load_audio(raw), config=audio_cfg)
    y_edit = analysis_signal(load_audio(edit), config=audio_cfg)
    S_raw, S_edit = log_mel(y_raw, cfg), log_mel(y_edit, cfg)
    beat_samples = np.round(np.asarray(ref.beat_times) * cfg.sr).astype(np.int64)
    beat_frame = beat_frames(beat_samples, hop_length=cfg.hop_length)
    with torch.no_grad():
        S_dec = decode_mel(
            model, torch.from_numpy(S_raw), beat_frame, downbeat_phase=ref.downbeat_phase
        ).numpy()
    result = render(y_raw[None, :], sr=cfg.sr, beat_samples=beat_samples, decisions=ref)
    centres = np.arange(S_raw.shape[1], dtype=np.int64) * cfg.hop_length
    out_sample = raw_to_output_samples(result.segments, centres)
    S_target, mask = aligned_target(S_edit, out_sample, hop_length=cfg.hop_length)
    S_target = np.where(mask[None, :], S_target, np.nan)
    return {
        "raw": S_raw,
        "supervised decoder (raw time)": S_dec,
        "human edit (raw time)": S_target,
        "human edit": S_edit,
        "_hop_sec": np.array(cfg.hop_length / cfg.sr),
    }


def plot_decoded_mel(mels: dict[str, np.ndarray], *, path: str | Path) -> Path:
    """Draw the panels of :func:`decoded_mels` on one colour scale; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hop_sec = float(mels["_hop_sec"])
    panels = {k: v for k, v in mels.items() if not k.startswith("_")}
    lo = float(np.nanpercentile(panels["raw"], 5))
    hi = float(np.nanmax(panels["raw"]))
    t_max = max(v.shape[1] for v in panels.values()) * hop_sec
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 1.8 * len(panels)), squeeze=False)
    for ax, (name, S) in zip(axes[:, 0], panels.items(), strict=True):
        F, T = S.shape
        ax.imshow(
            S,
            origin="lower",
            aspect="auto",
            extent=(0, T * hop_sec, 0, F),
            vmin=lo,
            vmax=hi,
            cmap="magma",
        )
        ax.set_xlim(0, t_max)
        ax.set_ylabel(name, fontsize=8)
    axes[-1, 0].set_xlabel("time [s]")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return Path(path)
