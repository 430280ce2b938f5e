"""The label suite's baselines: plain monotone DTW on chroma + MFCC, and keep-all.

DTW (``librosa.sequence.dtw``, Müller, "Fundamentals of Music Processing" §3.2) maps every raw
frame to edit frames along one monotone path: a raw beat the path crosses in under 30 % of its
frames' worth of edit frames is CUT, one whose edit level differs from the path's median level
difference (the export's global gain) by more than 4 dB is GAIN, everything else KEEP. It cannot
express loops, reorders or effects; it is the 40-line bar the labeller must clear.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 22050
HOP = 512


def keep_all(beat_times: np.ndarray):
    """Every beat KEEP."""
    from editorbot.evaluation.label_metrics import BeatLabels

    t = np.asarray(beat_times, dtype=float)
    labels = np.tile(np.array([0, 0, 2]), (len(t), 1))
    return BeatLabels(t, labels, np.zeros((0, 4), dtype=int))


def _features(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """([F, T] unit-norm chroma+MFCC, [T] level in dB) of one file's mono mix at 22,050 Hz."""
    import librosa

    y, _ = librosa.load(str(path), sr=SR, mono=True)
    chroma = librosa.feature.chroma_stft(y=y, sr=SR, hop_length=HOP)
    mfcc = librosa.feature.mfcc(y=y, sr=SR, hop_length=HOP, n_mfcc=21)[1:]
    mfcc = mfcc / (np.linalg.norm(mfcc, axis=0, keepdims=True) + 1e-9)
    chroma = chroma / (np.linalg.norm(chroma, axis=0, keepdims=True) + 1e-9)
    F = np.vstack([chroma, mfcc])
    rms = librosa.feature.rms(y=y, hop_length=HOP)[0]
    T = min(F.shape[1], len(rms))
    return F[:, :T], 20 * np.log10(rms[:T] + 1e-6)


def dtw_labels(raw: Path, edit: Path, beat_times: np.ndarray):
    """KEEP / CUT / GAIN per raw beat from one monotone DTW path."""
    import librosa

    from editorbot.editing.actions import ActionType
    from editorbot.evaluation.label_metrics import BeatLabels

    R, r_db = _features(raw)
    E, e_db = _features(edit)
    C = 2.0 - R.T @ E  # two unit-norm blocks: cosine distances summed, in [0, 4]
    _, wp = librosa.sequence.dtw(C=C)
    wp = wp[::-1]
    diff = e_db[wp[:, 1]] - r_db[wp[:, 0]]
    loud = (r_db[wp[:, 0]] > r_db.max() - 40) & (e_db[wp[:, 1]] > e_db.max() - 40)
    median = float(np.median(diff[loud])) if loud.any() else 0.0
    frames = np.round(np.asarray(beat_times) * SR / HOP).astype(int)
    ends = np.append(frames[1:], R.shape[1])
    types = np.full(len(frames), int(ActionType.KEEP))
    for b, (f0, f1) in enumerate(zip(frames, ends, strict=True)):
        on = (wp[:, 0] >= f0) & (wp[:, 0] < f1)
        n_edit = len(np.unique(wp[on, 1]))
        if n_edit < 0.3 * max(f1 - f0, 1):
            types[b] = ActionType.CUT
        elif on.any() and abs(float(np.median(diff[on])) - median) > 4.0:
            types[b] = ActionType.GAIN
    labels = np.stack([types, np.zeros_like(types), np.full_like(types, 2)], axis=1)
    return BeatLabels(np.asarray(beat_times, dtype=float), labels, np.zeros((0, 4), dtype=int))
