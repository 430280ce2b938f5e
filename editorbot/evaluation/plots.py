"""The evaluation report's pictures (matplotlib, Agg backend), each written atomically as PNG.

- :func:`plot_audio`: waveform and log-mel spectrogram of raw / model edits / human edit.
- :func:`plot_timeline`: per-raw-beat edit type of each decision list, coloured by type.
- :func:`plot_curves`: an RL run's training curves from its ``progress.jsonl``.

The confusion matrix is :func:`editorbot.evaluation.label_metrics.plot_confusion`.

Shape:
    tracks: name -> [shape=(L,)] mono float at ``sr``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from editorbot.atomic import atomic_path
from editorbot.editing.actions import N_TYPES, ActionType
from editorbot.editing.decisions import DecisionList

logger = logging.getLogger(__name__)

CURVE_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("type agreement (greedy)", ("val_type_agreement", "test_type_agreement")),
    ("largest type share", ("val_max_type_share", "test_max_type_share")),
    ("episode return", ("episode_return_mean",)),
    ("BC loss", ("bc_loss",)),
    ("entropy", ("entropy",)),
    ("policy loss", ("policy_loss",)),
)
"""Panels of the training curves: title and the ``progress.jsonl`` columns drawn in it (panels
with no column present are left out)."""


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    _pyplot().close(fig)
    return Path(path)


def plot_audio(tracks: dict[str, np.ndarray], *, sr: int, path: str | Path) -> Path:
    """One row per track: waveform (left) and log-mel spectrogram (right), same time axis."""
    import librosa

    plt = _pyplot()
    n = len(tracks)
    t_max = max(len(y) for y in tracks.values()) / sr
    fig, axes = plt.subplots(n, 2, figsize=(13, 1.9 * n), squeeze=False)
    for (name, y), (ax_w, ax_s) in zip(tracks.items(), axes, strict=True):
        t = np.arange(len(y)) / sr
        step = max(1, len(y) // 20000)  # [samples] decimate the line plot, not the audio
        ax_w.plot(t[::step], y[::step], lw=0.4, color="tab:blue")
        ax_w.set_xlim(0, t_max)
        ax_w.set_ylim(-1, 1)
        ax_w.set_ylabel(name, fontsize=8)
        S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512, n_mels=64)
        S_db = librosa.power_to_db(S, ref=np.max)
        ax_s.imshow(
            S_db,
            origin="lower",
            aspect="auto",
            extent=(0, len(y) / sr, 0, 64),
            vmin=-80,
            vmax=0,
            cmap="magma",
        )
        ax_s.set_xlim(0, t_max)
        ax_s.set_ylabel("mel bin", fontsize=8)
    axes[0, 0].set_title("waveform")
    axes[0, 1].set_title("log-mel spectrogram [dB]")
    axes[-1, 0].set_xlabel("time [s]")
    axes[-1, 1].set_xlabel("time [s]")
    fig.tight_layout()
    return _save(fig, path)


def plot_timeline(lists: dict[str, DecisionList], *, path: str | Path) -> Path:
    """One row per decision list: each raw beat coloured by the type of the decision on it."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from editorbot.evaluation.label_metrics import beat_labels

    plt = _pyplot()
    colours = plt.get_cmap("tab20")(np.arange(N_TYPES))
    fig, ax = plt.subplots(figsize=(13, 0.5 * len(lists) + 2.2))
    used: set[int] = set()
    for row, (name, dl) in enumerate(lists.items()):
        labels = beat_labels(dl, name=name)
        bt = labels.beat_times
        edges = np.append(bt, bt[-1] + (np.median(np.diff(bt)) if len(bt) > 1 else 0.5))
        types = labels.labels[:, 0]
        used |= set(types.tolist())
        ax.pcolormesh(
            edges,
            [row - 0.4, row + 0.4],
            types[None, :],
            cmap=ListedColormap(colours),
            vmin=-0.5,
            vmax=N_TYPES - 0.5,
        )
    ax.set_yticks(range(len(lists)), list(lists))
    ax.set_ylim(len(lists) - 0.5, -0.5)
    ax.set_xlabel("raw track time [s]")
    ax.set_title("decision per raw beat, coloured by type")
    handles = [Patch(color=colours[t], label=ActionType(t).name) for t in sorted(used)]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.25),
        ncol=8,
        fontsize=7,
        frameon=False,
    )
    fig.tight_layout()
    return _save(fig, path)


def read_progress(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``progress.jsonl`` (empty if the file is missing)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(rows: list[dict[str, Any]], *, path: str | Path) -> Path | None:
    """Training curves, one panel per :data:`CURVE_PANELS` entry, against the PPO iteration
    (iteration 0 = the BC start); None if no rows."""
    panels = [(t, [k for k in keys if any(_finite(r.get(k)) for r in rows)])
              for t, keys in CURVE_PANELS]  # fmt: skip
    panels = [(t, keys) for t, keys in panels if keys]
    if not rows or not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.8), squeeze=False)
    for (title, keys), ax in zip(panels, axes[0], strict=True):
        for key in keys:
            pts = [(r["iteration"], r[key]) for r in rows if _finite(r.get(key))]
            it, v = zip(*pts, strict=True)
            ax.plot(it, v, marker="o", ms=3, label=key.split("_")[0] if len(keys) > 1 else None)
        if len(keys) > 1:
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("iteration (0 = BC only)", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and bool(np.isfinite(v))
