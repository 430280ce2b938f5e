"""The global labeller (one frame path through the raw track) on edits a DAW would export.

The raw track is synthetic music whose every beat is a different chord, so each beat has one
right source; the edits are cut with plain numpy (not editorbot's renderer), with equal-power
crossfades at every seam, cut points a few ms off the beat and the result peak-normalised, so
no beat of the edit is a sample copy of the raw.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from editorbot.audio.io import Audio
from editorbot.editing.actions import ActionType as T
from editorbot.editing.align_labels import LabelConfig, label_files
from editorbot.editing.decisions import DecisionList
from editorbot.editing.labels.config import GlobalConfig
from editorbot.editing.labels.labeller import label_global
from editorbot.editing.labels.path import best_path
from editorbot.evaluation.label_metrics import beat_labels

SR = 22050
BEAT = 0.5
"""[s] one beat (120 BPM)."""
N = 40
"""[beats] of the raw track."""


def _music(seed: int = 0, shifted: range = range(0), semitones: int = 0) -> np.ndarray:
    """[shape=(1, L)] a new three-note chord with a plucked envelope on every beat; the beats
    in ``shifted`` with their chords ``semitones`` higher (the same noise)."""
    rng = np.random.default_rng(seed)
    n = int(BEAT * SR)
    t = np.arange(n) / SR
    beats = []
    for b in range(N):
        notes = 110.0 * 2 ** ((rng.integers(0, 36, size=3) + semitones * (b in shifted)) / 12)
        tone = sum(np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t) for f in notes)
        beats.append(0.15 * tone * np.exp(-3.0 * t) + 0.01 * rng.standard_normal(n))
    return np.concatenate(beats)[None].astype(np.float32)


def _edit(raw: np.ndarray, plan: list[tuple[int, int, float]], seed: int = 1) -> np.ndarray:
    """Raw beats [b0, b1) in ``plan`` order at gain g (linear), joined with 20 ms equal-power
    crossfades where the order breaks, each cut point up to 5 ms off the beat, then peak
    normalised to -1 dBFS (the export's global gain)."""
    rng = np.random.default_rng(seed)
    n = int(BEAT * SR)
    out = np.zeros(0, dtype=np.float64)
    prev_end = None
    for b0, b1, g in plan:
        jitter = rng.integers(-int(0.005 * SR), int(0.005 * SR) + 1, size=2)
        s, e = max(0, b0 * n + jitter[0] * (b0 > 0)), min(raw.shape[1], b1 * n + jitter[1])
        piece = g * raw[0, s:e].astype(np.float64)
        if prev_end is not None and prev_end == b0 and g == 1.0:
            out = np.concatenate([out, piece])
        else:
            k = min(int(0.020 * SR), len(out) // 2, len(piece) // 2)
            w = np.linspace(0, 0.5 * np.pi, k)
            mix = out[len(out) - k :] * np.cos(w) + piece[:k] * np.sin(w)
            out = np.concatenate([out[: len(out) - k], mix, piece[k:]])
        prev_end = b1
    return (10 ** (-1 / 20) * out / np.abs(out).max())[None].astype(np.float32)


PLAN = [(0, 8, 1.0), (12, 16, 1.0), (12, 16, 1.0), (16, 20, 2.0), (24, 28, 1.0),
        (20, 24, 1.0), (28, 40, 1.0)]  # fmt: skip
"""KEEP 0-7, CUT 8-11, LOOP x2 12-15, GAIN +6 dB 16-19, SWAP_NEXT 20-27, KEEP 28-39."""
TRUTH = [T.KEEP] * 8 + [T.CUT] * 4 + [T.LOOP] * 4 + [T.GAIN] * 4 + [T.SWAP_NEXT] * 8 + [
    T.KEEP] * 12  # fmt: skip


def test_global_labeller_reads_cut_loop_gain_and_swap_through_crossfades() -> None:
    raw = _music()
    edit = _edit(raw, PLAN)
    grid = np.arange(N) * BEAT
    dl = label_global(Audio(raw, SR), Audio(edit, SR), beat_times=grid)
    got = [T(x) for x in beat_labels(dl).labels[:, 0]]
    # Every beat: each beat is its own chord, so there is one right reading, and the parse
    # names it the way the edit language does (a LOOP of 4 x2, one SWAP_NEXT of two bars).
    assert got == TRUTH
    gain = next(d for d in dl.decisions if d.type == T.GAIN)
    assert gain.amount.name == "POS_LARGE"  # +6 dB, after the normalisation's global gain
    assert dl.meta["source"] == "editorbot labels (global path)"
    assert dl.meta["config"]["path"]["jump"] == GlobalConfig().path.jump  # thresholds recorded


def test_path_costs_are_in_units_of_the_pairs_contrast() -> None:
    """Scaling every feature by a constant changes no decision of the path: its costs are
    relative to the pair's own best and random frame distances."""
    rng = np.random.default_rng(3)
    R = rng.standard_normal((24, 300)).astype(np.float32)
    order = np.r_[0:100, 150:300]  # a cut of 50 frames
    E = R[:, order] + 0.05 * rng.standard_normal((24, len(order))).astype(np.float32)
    cfg = GlobalConfig().path
    a, b = best_path(E, R, cfg), best_path(3.0 * E, 3.0 * R, cfg)
    np.testing.assert_array_equal(a.source, b.source)
    assert (a.source == order).mean() > 0.97  # the cut is found within a frame or two
    assert not a.changed.any()  # noise 20x below the contrast: nothing is 'changed'


def test_a_pitch_shifted_bar_is_read_as_pitch() -> None:
    """A bar whose chroma is the raw's rolled by 5 semitones is explained by the shifted layer
    in place (not by a jump to some other chord), so its beats are consumed there."""
    raw = _music(seed=4)
    edit = _music(seed=4, shifted=range(8, 12), semitones=5)
    dl = label_global(Audio(raw, SR), Audio(edit, SR), beat_times=np.arange(N) * BEAT)
    got = [T(x) for x in beat_labels(dl).labels[:, 0]]
    assert got[8:12] == [T.PITCH_UP] * 4
    assert got[:8] == [T.KEEP] * 8 and got[12:] == [T.KEEP] * (N - 12)


@pytest.mark.parametrize("exported", [False, True])
def test_auto_picks_the_labeller_by_the_pairs_copy_floor(tmp_path: Path, exported: bool) -> None:
    """A sample-exact edit (a renderer's) goes to the alignment, an exported one (crossfades,
    normalisation, an MP3 round trip) to the global path; both read back from disk."""
    raw = _music(seed=5)
    if exported:
        buf = io.BytesIO()
        sf.write(buf, _edit(raw, PLAN).T, SR, format="MP3")
        buf.seek(0)
        edit = sf.read(buf, dtype="float32", always_2d=True)[0].T
    else:
        n = int(BEAT * SR)
        edit = np.concatenate([raw[:, : 8 * n], raw[:, 12 * n :]], axis=1)
    rp, ep, out = tmp_path / "x_raw.wav", tmp_path / "x_edit.wav", tmp_path / "x.json"
    sf.write(str(rp), raw.T, SR, subtype="FLOAT")
    sf.write(str(ep), edit.T, SR, subtype="FLOAT")
    grid = tmp_path / "grid.json"
    DecisionList(SR, np.arange(N) * BEAT, ()).save(grid)
    label_files(rp, ep, out, grid_path=grid, config=LabelConfig())
    dl = DecisionList.load(out)
    want = "global path" if exported else "alignment"
    assert want in dl.meta["source"]
    got = [T(x) for x in beat_labels(dl).labels[:, 0]]
    assert got[8:12] == [T.CUT] * 4  # both read the cut of beats 8-11
