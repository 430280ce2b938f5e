"""Labelling exported edits: the pair's export chain is estimated and put onto the raw track
before the alignment explains the edit (:func:`prepare_pair`).

The alignment itself is :func:`editorbot.editing.align_labels.label_files`, which calls this.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from editorbot.audio.io import Audio, resample
from editorbot.editing.labels.config import ExportConfig
from editorbot.editing.labels.mastering import (
    Chain,
    apply_chain,
    copy_floor_db,
    copy_residuals_db,
    estimate_chain,
    floor_of,
)

__all__ = ["Chain", "ExportConfig", "prepare_pair"]


def prepare_pair(raw: Audio, edit: Audio, config: ExportConfig) -> tuple[Audio, Audio, Chain]:
    """(raw through the edit's export chain, the edit at the raw's rate without its codec
    delay, the chain).

    Both come back at the raw track's rate; the edit keeps its channel count.
    """
    if not config.enabled:
        return raw, edit, Chain(0, (), (), 0.0, 0.0, False)
    y_edit = resample(edit.y, orig_sr=edit.sr, target_sr=raw.sr)
    chain = estimate_chain(raw.y.mean(axis=0), y_edit.mean(axis=0), sr=raw.sr, config=config)
    y_edit = np.ascontiguousarray(y_edit[:, chain.delay_samples :])
    mono_edit = y_edit.mean(axis=0)
    res = copy_residuals_db(raw.y.mean(axis=0), mono_edit, chain, sr=raw.sr, config=config)
    floor = floor_of(res)
    best = float(res.min()) if len(res) else -120.0
    if best <= config.exact_copy_db:  # sample-exact copies somewhere: nothing exported it
        exact = replace(chain, applied=False, copy_floor_db=floor, best_copy_db=best)
        return raw, Audio(y_edit, raw.sr, edit.path), exact
    y_raw = apply_chain(raw.y, chain, sr=raw.sr, config=config)
    floor = copy_floor_db(y_raw.mean(axis=0), mono_edit, chain, sr=raw.sr, config=config)
    chain = replace(chain, copy_floor_db=floor, best_copy_db=best)
    return Audio(y_raw, raw.sr, raw.path), Audio(y_edit, raw.sr, edit.path), chain
