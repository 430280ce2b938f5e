"""The real-music benchmark's house styles (benchmarks/house_styles.py) on a synthetic track.

The track has four full phrases at known, different levels and a short tail, so each style's
decisions are known in advance; the edit each style renders must match the truth it writes
(lengths, which phrases are gone or looped, levels), and the truth, written as editorbot's
decision list and rendered by editorbot's renderer, must give the same lengths and levels.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import house_styles
import real_style

SR = 8000
"""[Hz] low, so the test is fast; the styles do not depend on the rate."""
BEAT = SR // 2
"""[samples] 120 BPM."""
N_BEATS = 70
"""Four full phrases and a 6-beat tail."""
AMPS = (0.5, 0.1, 0.3, 0.05, 0.4)
"""Peak of each phrase (the last: the tail): phrase 3 is the quietest, 2 the loudest inner."""
MAX_FADE = int(0.080 * SR)
"""[samples] the longest crossfade the join makes (80 ms): each seam shortens the edit by at
most this much."""


@pytest.fixture(scope="module")
def track() -> tuple[np.ndarray, np.ndarray]:
    """(y [2, L], beat_times [N]): a 440 Hz sine, each phrase at its level of AMPS."""
    t = np.arange(N_BEATS * BEAT) / SR
    amp = np.repeat(np.array(AMPS), 16 * BEAT)[: len(t)]
    y = amp * np.sin(2 * np.pi * 440 * t)
    return np.stack([y, y]).astype(np.float64), np.arange(N_BEATS) * 0.5


def _phrase_rms(y: np.ndarray, start_beat: int) -> float:
    """RMS of the phrase starting at ``start_beat`` of ``y``, 1 s in from either edge (clear of
    ramps and crossfades)."""
    seg = y[0, start_beat * BEAT + SR : (start_beat + 16) * BEAT - SR]
    return float(np.sqrt(np.mean(seg**2)))


def _edit(style: str, track) -> tuple[list, np.ndarray]:
    y, beats = track
    steps = house_styles.STYLES[style](y, SR, beats)
    return steps, house_styles.render(y, SR, beats, steps, np.random.default_rng(0)).y


def _editorbot_render(steps: list, track) -> np.ndarray:
    from editorbot.audio.io import Audio
    from editorbot.editing.render import render_decision_list

    y, beats = track
    dl = real_style.as_decision_list(steps, beats, SR, meta={})
    return render_decision_list(Audio(y.astype(np.float32), SR), dl).y


def test_radio_cuts_the_two_quietest_inner_phrases(track) -> None:
    steps, out = _edit("radio", track)
    # A third of 70 beats is 2 phrases; phrases 1 (0.1) and 3 (0.05) are the quietest inner.
    assert [(s.beat, s.type) for s in steps] == [(16, "CUT"), (48, "CUT"), (66, "FADE_OUT")]
    expected = (N_BEATS - 32) * BEAT
    assert expected - 2 * MAX_FADE <= out.shape[1] <= expected  # two seams
    # What is left is phrases 0 and 2, then the tail: phrase 2 now starts at beat 16.
    assert _phrase_rms(out, 16) == pytest.approx(0.3 / np.sqrt(2), rel=0.01)
    assert out[0, -1] == pytest.approx(0.0, abs=1e-3)  # faded out to silence
    ours = _editorbot_render(steps, track)
    assert abs(ours.shape[1] - out.shape[1]) <= 2 * MAX_FADE


def test_extended_loops_the_intro_and_the_loud_phrase(track) -> None:
    steps, out = _edit("extended", track)
    # Median phrase level lies between 0.1 and 0.3: only phrase 2 (beyond the intro) is above.
    assert [(s.beat, s.type, s.n_beats, s.value) for s in steps] == [
        (0, "LOOP", 4, 3.0),
        (32, "LOOP", 8, 2.0),
    ]
    expected = (N_BEATS + 8 + 8) * BEAT
    assert expected - 3 * MAX_FADE <= out.shape[1] <= expected  # 2 seams in the intro, 1 later
    ours = _editorbot_render(steps, track)
    assert abs(ours.shape[1] - out.shape[1]) <= 3 * MAX_FADE


def test_energy_rides_the_quietest_up_and_the_loudest_down(track) -> None:
    y, _ = track
    steps, out = _edit("energy", track)
    assert [(s.beat, s.type, s.value) for s in steps] == [
        (0, "FADE_IN", 0.0),
        (32, "GAIN", -3.0),
        (48, "GAIN", 6.0),
        (66, "FADE_OUT", 0.0),
    ]
    assert out.shape == y.shape  # no seam: rides and fades keep the length
    ours = _editorbot_render(steps, track)
    assert ours.shape[1] == y.shape[1]
    for beat, db in ((16, 0.0), (32, -3.0), (48, 6.0)):
        want = _phrase_rms(y, beat) * 10 ** (db / 20)
        # 1 %: the level inside a phrase is the exact gain (the 10 ms ramps lie outside).
        assert _phrase_rms(out, beat) == pytest.approx(want, rel=0.01)
        assert _phrase_rms(ours, beat) == pytest.approx(want, rel=0.01)
    assert abs(out[0, 0]) < 1e-6 and abs(out[0, -1]) < 1e-3  # fades from and to silence


@pytest.mark.parametrize("style", sorted(house_styles.STYLES))
def test_truth_list_names_what_the_style_did(style: str, track) -> None:
    from editorbot.editing.actions import ActionType
    from editorbot.evaluation.label_metrics import beat_labels

    y, beats = track
    steps = house_styles.STYLES[style](y, SR, beats)
    labels = beat_labels(real_style.as_decision_list(steps, beats, SR, meta={}))
    names = [ActionType(int(t)).name for t in labels.labels[:, 0]]
    assert names == house_styles.types_per_beat(steps, N_BEATS)
