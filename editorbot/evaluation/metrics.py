"""How close a model's edit comes to the human edit: decisions, cut points, duration, sound.

Every metric compares one rendered edit (``y_est``) with the human edit (``y_ref``) of the same
raw track, or their decision lists, by time on the raw track:

- **decision agreement**: per raw beat (type, size, amount), via
  :class:`editorbot.evaluation.label_metrics.LabelScores` (beats matched by time).
- **cut points**: the raw-time boundaries where the per-beat edit type changes, scored with
  ``mir_eval.segment.detection`` at ±0.5 s and ±3 s (track start and end trimmed).
- **duration ratio error**: ``|L_est / L_ref - 1|``.
- **aligned spectral distance**: both edits' log-mel frames (hop ``dtw_hop_sec``) are aligned with
  dynamic time warping (Sakoe & Chiba 1978, https://doi.org/10.1109/TASSP.1978.1163055; cosine
  cost, steps (1,1), (1,0), (0,1)); the path gives, for every frame of the model's edit, the
  human-edit time it matches (the mean over the path's pairs). "After aligning" means: each
  model frame is compared with the human frame at that time. The distances are then the mean
  log-mel L1 over the path, and the multi-resolution STFT distance (spectral convergence +
  log-magnitude L1, averaged over FFT sizes; Yamamoto et al. 2020,
  https://arxiv.org/abs/1910.11480) over model frames paired through the same time map.
- **seam quality**: at every seam of the output (where the renderer's output map jumps in the
  source), the RMS of the first difference in a short window, divided by the median of the same
  measure over the whole output: about 1 = as smooth as the music around it, a click is >> 1.

Shape:
    y_est, y_ref: [shape=(L,)] mono float at ``sr``.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from editorbot.audio import spectral
from editorbot.editing.decisions import DecisionList
from editorbot.evaluation.label_metrics import BeatLabels, LabelScores, beat_labels

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricsConfig:
    """Settings of the audio metrics."""

    sr: int = 22050
    """[Hz] rate both edits are compared at (the analysis rate)."""
    n_mels: int = 64
    """[bins] mel bands of the log-mel used for DTW and the log-mel L1."""
    dtw_hop_sec: float = 0.1
    """[s] frame hop of the DTW (a 4-minute edit is 2,400 frames: a 46 MB cost matrix)."""
    fft_sizes: tuple[int, ...] = (512, 1024, 2048)
    """[samples] STFT sizes of the multi-resolution distance (hop = n_fft / 4)."""
    seam_window_ms: float = 5.0
    """[ms] window around a seam in which the discontinuity is measured."""
    boundary_windows_sec: tuple[float, ...] = (0.5, 3.0)
    """[s] hit windows of the cut-point detection."""


def decision_scores(ref: DecisionList, est: DecisionList, scores: LabelScores) -> None:
    """Add one track's per-beat comparison (reference = the human edit's labels) to ``scores``."""
    scores.add(beat_labels(ref, name="reference"), beat_labels(est, name="estimate"))


def cut_points(labels: BeatLabels, *, duration_sec: float) -> np.ndarray:
    """[s] raw-time boundaries where the per-beat edit type changes (start and end included)."""
    types = labels.labels[:, 0]
    change = np.flatnonzero(np.diff(types) != 0) + 1
    inner = labels.beat_times[change]
    return np.unique(np.concatenate([[0.0], inner, [duration_sec]]))


def boundary_scores(
    ref: DecisionList, est: DecisionList, *, duration_sec: float, config: MetricsConfig
) -> dict[str, float]:
    """Cut-point precision / recall (hit rate) / F at each window, via ``mir_eval``."""
    import mir_eval

    r = _intervals(cut_points(beat_labels(ref), duration_sec=duration_sec))
    e = _intervals(cut_points(beat_labels(est), duration_sec=duration_sec))
    out: dict[str, float] = {}
    for w in config.boundary_windows_sec:
        with warnings.catch_warnings():  # mir_eval warns on an edit with no inner boundary
            warnings.simplefilter("ignore")
            p, rec, f = mir_eval.segment.detection(r, e, window=w, trim=True)
        out |= {f"cut_precision@{w:g}s": p, f"cut_hit_rate@{w:g}s": rec, f"cut_f@{w:g}s": f}
    return {k: float(v) for k, v in out.items()}


def _intervals(bounds: np.ndarray) -> np.ndarray:
    return np.stack([bounds[:-1], bounds[1:]], axis=1)


def duration_ratio_error(y_est: np.ndarray, y_ref: np.ndarray) -> float:
    """``|L_est / L_ref - 1|``: 0 = the same length as the human edit."""
    return float(abs(y_est.shape[-1] / max(y_ref.shape[-1], 1) - 1.0))


def aligned_spectral_distance(
    y_est: np.ndarray, y_ref: np.ndarray, *, config: MetricsConfig
) -> dict[str, float]:
    """Log-mel L1 and multi-resolution STFT distance after DTW (see the module docstring)."""
    import librosa

    sr, hop = config.sr, round(config.dtw_hop_sec * config.sr)
    A = _log_mel(y_est, sr=sr, hop_length=hop, n_mels=config.n_mels)
    B = _log_mel(y_ref, sr=sr, hop_length=hop, n_mels=config.n_mels)
    _, path = librosa.sequence.dtw(X=A, Y=B, metric="cosine")
    path = path[::-1]
    mel_l1 = float(np.mean(np.abs(A[:, path[:, 0]] - B[:, path[:, 1]])))
    # [frames] for each model frame, the mean matched human frame → a time map in seconds
    matched = np.bincount(path[:, 0], weights=path[:, 1]) / np.bincount(path[:, 0])
    t_est, t_ref = np.arange(len(matched)) * config.dtw_hop_sec, matched * config.dtw_hop_sec
    # past the last DTW frame the map continues at slope 1 (np.interp would hold it constant)
    t_est, t_ref = np.append(t_est, t_est[-1] + 1.0), np.append(t_ref, t_ref[-1] + 1.0)
    sc, mag = [], []
    for n_fft in config.fft_sizes:
        s, m = _stft_distance(y_est, y_ref, n_fft=n_fft, sr=sr, t_map=(t_est, t_ref))
        sc.append(s)
        mag.append(m)
    return {
        "log_mel_l1": mel_l1,
        "mrstft_sc": float(np.mean(sc)),
        "mrstft_log_mag_l1": float(np.mean(mag)),
        "mrstft": float(np.mean(sc) + np.mean(mag)),
    }


def _log_mel(y: np.ndarray, *, sr: int, hop_length: int, n_mels: int) -> np.ndarray:
    S = spectral.mel_power(y, sr=sr, n_fft=4 * hop_length, hop_length=hop_length, n_mels=n_mels)
    return np.log(S + 1e-6)


def _stft_distance(
    y_est: np.ndarray,
    y_ref: np.ndarray,
    *,
    n_fft: int,
    sr: int,
    t_map: tuple[np.ndarray, np.ndarray],
) -> tuple[float, float]:
    """Spectral convergence and log-magnitude L1 of model frames vs. their matched human frames."""
    hop = n_fft // 4
    S_est = spectral.magnitude_spectrogram(y_est, n_fft=n_fft, hop_length=hop)
    S_ref = spectral.magnitude_spectrogram(y_ref, n_fft=n_fft, hop_length=hop)
    t = np.arange(S_est.shape[1]) * hop / sr  # [s] model frame times
    j = np.round(np.interp(t, *t_map) * sr / hop).astype(np.int64)
    R = S_ref[:, np.clip(j, 0, S_ref.shape[1] - 1)]
    sc = np.linalg.norm(R - S_est) / max(float(np.linalg.norm(R)), 1e-8)
    mag = np.mean(np.abs(np.log(S_est + 1e-5) - np.log(R + 1e-5)))
    return float(sc), float(mag)


def seam_samples(segments: list[Any]) -> np.ndarray:
    """[samples] output positions where the source jumps (from a render's ``segments``)."""
    seams = [
        b.out_start
        for a, b in itertools.pairwise(segments)
        if a.from_output or b.from_output or a.raw_end != b.raw_start or a.type != b.type
    ]
    return np.asarray(seams, dtype=np.int64)


def seam_discontinuity(y: np.ndarray, seams: np.ndarray, *, sr: int, window_ms: float) -> dict:
    """Discontinuity at each seam relative to the output's typical level (module docstring).

    Args:
        y: [shape=(L,)] mono output at ``sr``.
        seams: [samples] seam positions at ``sr``.
    """
    n = max(2, round(window_ms * 1e-3 * sr))
    if len(y) < 2 * n:
        return {"n_seams": 0, "seam_score_mean": float("nan"), "seam_score_max": float("nan")}
    d = np.diff(y.astype(np.float64), prepend=y[:1])
    L = len(d) // n * n
    typical = float(np.median(np.sqrt(np.mean(d[:L].reshape(-1, n) ** 2, axis=1)))) + 1e-9
    scores = [
        np.sqrt(np.mean(d[max(0, s - n // 2) : s + n // 2] ** 2)) / typical
        for s in seams
        if 0 < s < len(d)
    ]
    if not scores:
        return {"n_seams": 0, "seam_score_mean": float("nan"), "seam_score_max": float("nan")}
    return {
        "n_seams": len(scores),
        "seam_score_mean": float(np.mean(scores)),
        "seam_score_max": float(np.max(scores)),
    }
