"""New training pairs for rare actions: sampled decision lists rendered from raw tracks.

Styles and human editors use a few types most of the time (KEEP, CUT, GAIN); the learners and the
alignment's per-type measurement need the rare ones too (REVERSE, SWAP_NEXT, REPEAT_PREV, ...).
Here each decision is drawn with type weights that favour rare types (uniform over the types the
state machine allows, with KEEP down-weighted), rendered with the one renderer, and written in the
seed layout with its truth. Every pair is a new render of a new decision list; nothing existing
is copied under new labels.

Shape:
    audio y: [shape=(C, L)]; beat_times: [shape=(N,)] seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from editorbot.audio.io import Audio, write_audio
from editorbot.editing.actions import (
    N_TYPES,
    ActionType,
    action_masks,
    initial_state,
    step,
)
from editorbot.editing.decisions import DecisionList, decisions_from_actions
from editorbot.editing.render import render

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AugmentConfig:
    """How augmented decision lists are drawn."""

    keep_weight: float = 0.3
    """[relative weight] of KEEP; every other allowed type has weight 1 (rare types are as
    likely as common ones)."""
    max_size: int = 2
    """[size index] largest size drawn (2 = TWO_BARS), so a short track gets many decisions."""


def sample_actions(
    n_beats: int, *, rng: np.random.Generator, downbeat_phase: int = 0, config: AugmentConfig
) -> np.ndarray:
    """A valid random edit of ``n_beats`` beats. [shape=(n, 3)] int (type, size, amount)."""
    state = initial_state(n_beats, downbeat_phase=downbeat_phase)
    actions = []
    while not state.done:
        type_mask, size_mask, amount_mask = action_masks(state)
        w = type_mask.astype(float)
        w[ActionType.KEEP] *= config.keep_weight
        t = int(rng.choice(N_TYPES, p=w / w.sum()))
        sizes = np.flatnonzero(size_mask[t])
        small = sizes[sizes <= config.max_size]
        s = int(rng.choice(small if len(small) else sizes))
        a = int(rng.choice(np.flatnonzero(amount_mask[t])))
        actions.append((t, s, a))
        state, _ = step(state, t, s, a)
    return np.array(actions, dtype=np.int64)


def augment_track(
    raw: Audio,
    *,
    name: str,
    beat_times: np.ndarray,
    downbeat_phase: int,
    out_dir: Path,
    n_pairs: int,
    rng: np.random.Generator,
    config: AugmentConfig | None = None,
) -> list[str]:
    """Write ``n_pairs`` new (raw, edit, truth) triples for one raw track; returns their names."""
    config = config or AugmentConfig()
    beat_samples = np.round(np.asarray(beat_times) * raw.sr).astype(np.int64)
    names = []
    for k in range(n_pairs):
        actions = sample_actions(
            len(beat_times), rng=rng, downbeat_phase=downbeat_phase, config=config
        )
        dl = decisions_from_actions(
            actions,
            n_beats=len(beat_times),
            sample_rate=raw.sr,
            beat_times=np.asarray(beat_times),
            downbeat_phase=downbeat_phase,
            meta={"source": "editorbot augment", "from": name, "index": k},
        )
        result = render(raw.y, sr=raw.sr, beat_samples=beat_samples, decisions=dl)
        x = f"{name}_aug{k:02d}"
        protect = (raw.path,) if raw.path is not None else ()
        write_audio(out_dir / "input" / f"{x}_raw.wav", raw.y, sr=raw.sr, protect=protect)
        write_audio(out_dir / "desired_output" / f"{x}_edit.wav", result.y, sr=raw.sr)
        _save(dl, out_dir / "truth" / f"{x}.json")
        names.append(x)
    return names


def _save(dl: DecisionList, path: Path) -> None:
    dl.save(path)
