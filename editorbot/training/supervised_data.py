"""Training examples for the supervised baseline: aligned (raw, edited) log-mels and frame labels.

Targets come from the alignment, never from position: the track's decision list is replayed
through the renderer, whose output segments say which raw samples each stretch of the output came
from. Inverting that map gives, for every raw frame, the frame of the edited track it became (its
first appearance); the edited track's log-mel at that frame is the raw frame's target. Raw frames
that appear nowhere in the output (CUT, SKIP) have no target and are masked out of the
reconstruction losses; they keep their CUT/SKIP label for the label head.

Beat grid convention: beat i's frames are [beat_frame[i], beat_frame[i + 1]); frames before beat 0
belong to beat 0, frames after the last beat to the last beat.

How to run: used by ``editorbot.training.supervised_train``; ``load_examples(data_dir, cfg)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from editorbot.editing.actions import (
    SIZE_BEATS,
    ActionAmount,
    ActionSize,
    ActionType,
    EditState,
    skip_end,
)
from editorbot.errors import DatasetError
from editorbot.models.supervised import LogMel, SupervisedConfig

logger = logging.getLogger(__name__)

TRUTH_DIR = "truth"
"""Folder under the data folder holding each pair's decision list ``X.json``."""


@dataclass(frozen=True, eq=False)
class TrackExample:
    """One track's aligned training data.

    Attributes:
        name: the pair's name.
        S_raw: [shape=(F, T)] raw log-mel.
        S_target: [shape=(F, T)] edited log-mel at the frame each raw frame became.
        target_mask: [shape=(T,)] bool, false where the raw frame was cut (no target).
        labels: [shape=(3, T)] int64 per-frame (type, size, amount).
        beat_frame: [shape=(W,)] int64 first frame of each beat of the labels' grid.
        beat_labels: [shape=(3, W)] int64 per-beat (type, size, amount) (what the beat head
            learns; ``labels`` is them broadcast to frames).
        downbeat_phase: index of the first downbeat among beats 0..3.
    """

    name: str
    S_raw: np.ndarray
    S_target: np.ndarray
    target_mask: np.ndarray
    labels: np.ndarray
    beat_frame: np.ndarray
    beat_labels: np.ndarray
    downbeat_phase: int = 0


def log_mel(y: np.ndarray, cfg: SupervisedConfig) -> np.ndarray:
    """Log-mel of a mono signal at ``cfg.sr``. [shape=(L,)] -> [shape=(F, T)]."""
    with torch.no_grad():
        return LogMel(cfg)(torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))).numpy()


def beat_frames(beat_samples: np.ndarray, *, hop_length: int) -> np.ndarray:
    """Frame index where each beat starts. [shape=(N,)] samples -> [shape=(N,)] frames."""
    return np.round(np.asarray(beat_samples, dtype=np.float64) / hop_length).astype(np.int64)


def frame_beats(beat_frame: np.ndarray, T: int) -> np.ndarray:
    """The beat each frame belongs to (grid convention above). [shape=(T,)] int64."""
    return np.clip(np.searchsorted(beat_frame, np.arange(T), side="right") - 1, 0, None)


def beat_labels(decisions: Any, n_beats: int) -> np.ndarray:
    """Per-raw-beat (type, size, amount): the decision whose cursor consumed the beat.

    The decision list is run through the edit state machine (``plan_segments``), so SKIP's
    boundary, SWAP_NEXT's two segments and undecided gaps (KEEP) come out as the renderer sees
    them. A JUMP_BACK consumes no raw beat, so the decision after it labels those beats.

    Returns:
        [shape=(3, n_beats)] int64.
    """
    from editorbot.editing.decisions import GAP_DECISION, plan_segments

    labels = np.empty((3, n_beats), dtype=np.int64)
    labels[0], labels[1], labels[2] = ActionType.KEEP, ActionSize.BEAT, ActionAmount.NEUTRAL
    planned = plan_segments(decisions, n_beats)
    for i, seg in planned:
        if i == GAP_DECISION or seg.consumed_start < 0:
            continue
        d = decisions.decisions[i]
        labels[:, seg.consumed_start : seg.consumed_end] = np.array(
            [int(d.type), int(d.size), int(d.amount)]
        )[:, None]
    # CUT and SKIP add no segment; their consumed beats are the gap to the next decision.
    for i, d in enumerate(decisions.decisions):
        if d.type in (ActionType.CUT, ActionType.SKIP):
            end = _consumed_end(decisions, i, n_beats)
            labels[:, d.beat : end] = np.array([int(d.type), int(d.size), int(d.amount)])[:, None]
    return labels


def _consumed_end(decisions: Any, i: int, n_beats: int) -> int:
    """[beats] end of the raw beats a CUT or SKIP decision consumed (exclusive)."""
    d = decisions.decisions[i]
    if d.type == ActionType.CUT:
        return min(d.beat + SIZE_BEATS[d.size], n_beats)
    state = EditState(n_beats=n_beats, downbeat_phase=decisions.downbeat_phase, cursor=d.beat)
    return skip_end(state, d.size)


def frame_labels(per_beat: np.ndarray, beat_frame: np.ndarray, T: int) -> np.ndarray:
    """Per-frame (type, size, amount) from per-beat labels [shape=(3, n_beats)] (each frame
    takes its beat's label). [shape=(3, T)]."""
    return per_beat[:, frame_beats(beat_frame, T)]


def raw_to_output_samples(segments: Sequence[Any], raw_samples: np.ndarray) -> np.ndarray:
    """For each raw sample position, the output sample it first became, or -1 if cut.

    Args:
        segments: the renderer's output map (``RenderResult.segments``); a time-stretched
            segment maps linearly, a REVERSE segment backwards; REPEAT_PREV segments (whose
            source is the output) are skipped: their raw frames already appeared earlier.
        raw_samples: [shape=(T,)] raw sample positions to map (frame centres).

    Returns:
        [shape=(T,)] int64 output samples, -1 where no segment covers the position.
    """
    out = np.full(raw_samples.shape, -1, dtype=np.int64)
    for seg in sorted(segments, key=lambda s: int(s.out_start)):
        if seg.from_output:
            continue
        r0, r1, o0, o1 = (
            int(seg.raw_start),
            int(seg.raw_end),
            int(seg.out_start),
            int(seg.out_end),
        )
        if r1 <= r0 or o1 <= o0:
            continue
        hit = (raw_samples >= r0) & (raw_samples < r1) & (out < 0)
        frac = (raw_samples[hit] - r0) / (r1 - r0)
        if seg.type == ActionType.REVERSE:
            frac = 1.0 - frac
        out[hit] = o0 + np.floor(frac * (o1 - o0)).astype(np.int64)
    return out


def aligned_target(
    S_edit: np.ndarray, out_sample: np.ndarray, *, hop_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gather the edited log-mel at the output frame of each raw frame.

    Shape:
        S_edit: (F, T_edit); out_sample: (T,) int64 (-1 = cut) -> (F, T) target, (T,) mask.
    """
    F, T_edit = S_edit.shape
    out_frame = np.round(out_sample / hop_length).astype(np.int64)
    mask = (out_sample >= 0) & (out_frame < T_edit)
    S_target = S_edit[:, np.clip(out_frame, 0, T_edit - 1)]
    return np.ascontiguousarray(S_target), mask


def _load_decisions(path: Path) -> Any:
    """The decision list (with its beat grid) the pair's edit was made with."""
    from editorbot.editing.decisions import DecisionList

    decisions = DecisionList.load(path)
    if decisions.beat_times is None:
        raise DatasetError(
            f"{path}: the decision list has no 'beat_times'; the targets need the grid the edit "
            "was made on — regenerate it with `editorbot demo-data` or the alignment"
        )
    return decisions


def prepare_track(
    name: str, raw: Path, edit: Path, truth: Path, cfg: SupervisedConfig
) -> TrackExample:
    """Load one pair, replay its decisions through the renderer, and align the target."""
    from editorbot.audio.io import AudioConfig, analysis_signal, load_audio
    from editorbot.editing.render import render

    audio_cfg = AudioConfig(analysis_sr=cfg.sr)
    y_raw = analysis_signal(load_audio(raw), config=audio_cfg)
    y_edit = analysis_signal(load_audio(edit), config=audio_cfg)
    decisions = _load_decisions(truth)
    beat_samples = np.round(decisions.beat_times * cfg.sr).astype(np.int64)
    result = render(y_raw[None, :], sr=cfg.sr, beat_samples=beat_samples, decisions=decisions)
    S_raw, S_edit = log_mel(y_raw, cfg), log_mel(y_edit, cfg)
    T = S_raw.shape[1]
    centres = np.arange(T, dtype=np.int64) * cfg.hop_length
    out_sample = raw_to_output_samples(result.segments, centres)
    S_target, mask = aligned_target(S_edit, out_sample, hop_length=cfg.hop_length)
    beat_frame = beat_frames(beat_samples, hop_length=cfg.hop_length)
    per_beat = beat_labels(decisions, len(beat_frame))
    labels = frame_labels(per_beat, beat_frame, T)
    logger.debug("%s: %d frames, %.0f%% with a target", name, T, 100 * mask.mean())
    return TrackExample(
        name, S_raw, S_target, mask, labels, beat_frame, per_beat, int(decisions.downbeat_phase)
    )


def load_examples(
    data_dir: str | Path, cfg: SupervisedConfig, *, labels_dir: str | Path | None = None
) -> list[TrackExample]:
    """Every pair under ``data_dir`` with its decision list ``LABELS/X.json``, aligned.

    Args:
        data_dir: the seed layout (``input/``, ``desired_output/``).
        cfg: model config (mel settings).
        labels_dir: decision lists per pair — the output of ``editorbot labels`` for your own
            data; defaults to ``data_dir/truth`` (what the demo generator writes).

    Raises:
        DatasetError: no pairs, or a pair without the decision list the targets come from.
    """
    from editorbot.datasets.pairs import discover_pairs

    data_dir = Path(data_dir)
    labels = Path(labels_dir) if labels_dir is not None else data_dir / TRUTH_DIR
    examples = []
    for p in discover_pairs(data_dir):
        decisions = labels / f"{p.name}.json"
        if not decisions.is_file():
            raise DatasetError(
                f"{p.raw}: no decision list {decisions}; the supervised baseline trains on "
                "targets aligned through the edit's decision list — run `editorbot labels "
                f"--data-dir {data_dir} --out LABELS` and pass --labels LABELS"
            )
        examples.append(prepare_track(p.name, p.raw, p.edit, decisions, cfg))
    return examples


def split_by_track(
    examples: Sequence[TrackExample], *, val_fraction: float, seed: int
) -> tuple[list[TrackExample], list[TrackExample]]:
    """Hold out whole tracks for validation (at least one each side when there are two or more)."""
    order = np.random.default_rng(seed).permutation(len(examples))
    n_val = min(max(1, round(val_fraction * len(examples))), len(examples) - 1)
    if len(examples) < 2:
        raise DatasetError(f"need at least 2 tracks to split by track, got {len(examples)}")
    val = [examples[i] for i in sorted(order[:n_val])]
    train = [examples[i] for i in sorted(order[n_val:])]
    return train, val


class CropDataset(torch.utils.data.Dataset):
    """Windowed crops of ``crop_frames`` frames at random starts, track ``i % n_tracks``.

    Starts depend on (seed, epoch, index) only: training sets ``epoch`` each epoch for new crops;
    validation leaves it at 0, so it scores the same crops every epoch.

    Each item: S_raw (F, T), S_target (F, T), labels (3, T), target_mask (T,), frame_mask (T,);
    tracks shorter than a crop are zero-padded with ``frame_mask`` false on the padding.
    """

    def __init__(
        self, examples: Sequence[TrackExample], *, crop_frames: int, n_crops: int, seed: int
    ) -> None:
        self._examples = list(examples)
        self._T = crop_frames
        self._n = n_crops
        self._seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng((self._seed, self.epoch, i))
        ex = self._examples[i % len(self._examples)]
        T_track = ex.S_raw.shape[1]
        start = int(rng.integers(0, max(1, T_track - self._T + 1)))
        return _crop(ex, start, self._T)


def _crop(ex: TrackExample, start: int, T: int) -> dict[str, torch.Tensor]:
    stop = min(start + T, ex.S_raw.shape[1])
    n = stop - start
    pad = T - n

    def take(a: np.ndarray, fill: float = 0.0) -> torch.Tensor:
        part = a[..., start:stop]
        if pad:
            part = np.concatenate([part, np.full((*a.shape[:-1], pad), fill, a.dtype)], -1)
        return torch.from_numpy(np.array(part))  # a copy: arrays from Ray's store are read-only

    frame_mask = np.zeros(T, dtype=bool)
    frame_mask[:n] = True
    return {
        "S_raw": take(ex.S_raw),
        "S_target": take(ex.S_target),
        "labels": take(ex.labels),
        "target_mask": take(ex.target_mask, False),
        "frame_mask": torch.from_numpy(frame_mask),
    }


def label_counts(examples: Sequence[TrackExample]) -> list[torch.Tensor]:
    """How many beats of the examples carry each type, size and amount (class weights)."""
    from editorbot.editing.actions import N_AMOUNTS, N_SIZES, N_TYPES

    beats = np.concatenate([ex.beat_labels for ex in examples], axis=1)
    return [
        torch.from_numpy(np.bincount(beats[i], minlength=n)).to(torch.float64)
        for i, n in enumerate((N_TYPES, N_SIZES, N_AMOUNTS))
    ]


def beat_tracks(examples: Sequence[TrackExample], device: Any = "cpu") -> list[tuple[Any, Any]]:
    """(BeatTrack, beat labels (3, W) long) of each example, as tensors on ``device``."""
    from editorbot.models.supervised_beats import BeatTrack

    return [
        (
            BeatTrack(
                torch.from_numpy(np.array(ex.S_raw)).to(device),
                torch.from_numpy(np.array(ex.beat_frame)).to(device),
                int(ex.downbeat_phase),
            ),
            torch.from_numpy(np.array(ex.beat_labels)).to(device),
        )
        for ex in examples
    ]


def pad_beat_labels(labels: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack (3, W_i) beat labels into (B, 3, max W), padded with KEEP/BEAT/NEUTRAL (masked)."""
    W = max(y.shape[1] for y in labels)
    out = labels[0].new_zeros(len(labels), 3, W)
    out[:, 0], out[:, 1], out[:, 2] = ActionType.KEEP, ActionSize.BEAT, ActionAmount.NEUTRAL
    for b, y in enumerate(labels):
        out[b, :, : y.shape[1]] = y
    return out
