"""Synthetic signals with known answers: click tracks and kick/snare/hat(+bass) patterns.

Used by the tests (beat accuracy, downbeat phase, CLI checks) and by ``editorbot demo``. Every
generator is deterministic for a given ``seed`` and returns the true beat times with the audio.

Shape:
    y: [shape=(L,)] float32 mono, peak below 1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

BEATS_PER_BAR = 4
"""[beats] the 4/4 grid every pattern here is written in."""


@dataclass(frozen=True)
class SyntheticTrack:
    """A generated mono track and its ground truth.

    Attributes:
        y: [shape=(L,)] float32 samples.
        sr: [Hz] sample rate.
        beat_times: [s] true beat onsets, shape (n_beats,).
        downbeat_times: [s] true first beats of bars, shape (n_bars,).
        tempo_bpm: [beats/min] the tempo it was written at.
    """

    y: np.ndarray
    sr: int
    beat_times: np.ndarray
    downbeat_times: np.ndarray
    tempo_bpm: float


def _beat_grid(tempo_bpm: float, duration_sec: float, start_sec: float) -> np.ndarray:
    period = 60.0 / tempo_bpm  # [s/beat] = [60 s/min] / [beats/min]
    return np.arange(start_sec, duration_sec - 1e-9, period)


def _add(y: np.ndarray, event: np.ndarray, start_sample: int, gain: float) -> None:
    end = min(len(y), start_sample + len(event))
    if end > start_sample >= 0:
        y[start_sample:end] += gain * event[: end - start_sample]


def _click(sr: int, freq_hz: float = 1000.0, dur_sec: float = 0.03) -> np.ndarray:
    t = np.arange(int(dur_sec * sr)) / sr
    return (np.sin(2 * np.pi * freq_hz * t) * np.exp(-t / (dur_sec / 5))).astype(np.float32)


def _kick(sr: int) -> np.ndarray:
    t = np.arange(int(0.25 * sr)) / sr
    # Pitch sweep 150 -> 45 Hz: the low-frequency thump the downbeat estimate listens for.
    freq = 45.0 + 105.0 * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    return (np.sin(phase) * np.exp(-t / 0.08)).astype(np.float32)


def _noise_burst(sr: int, rng: np.random.Generator, dur_sec: float, decay_sec: float) -> np.ndarray:
    t = np.arange(int(dur_sec * sr)) / sr
    return (rng.standard_normal(len(t)) * np.exp(-t / decay_sec)).astype(np.float32)


def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.18 * sr)) / sr
    body = np.sin(2 * np.pi * 190.0 * t) * np.exp(-t / 0.04)
    return (0.6 * body + 0.5 * _noise_burst(sr, rng, 0.18, 0.05)).astype(np.float32)


def _hat(sr: int, rng: np.random.Generator) -> np.ndarray:
    burst = _noise_burst(sr, rng, 0.05, 0.01)
    return np.diff(burst, prepend=0.0).astype(np.float32)  # differencing = crude high-pass


def _normalise(y: np.ndarray, peak: float = 0.8) -> np.ndarray:
    return (y * (peak / max(float(np.abs(y).max()), 1e-9))).astype(np.float32)


def click_track(
    *, tempo_bpm: float, duration_sec: float, sr: int = 22050, start_sec: float = 0.0
) -> SyntheticTrack:
    """A 1 kHz click on every beat (the downbeat is not marked: every beat is equal).

    Args:
        tempo_bpm: [beats/min] tempo.
        duration_sec: [s] length.
        sr: [Hz] sample rate.
        start_sec: [s] time of the first click.
    """
    y = np.zeros(round(duration_sec * sr), dtype=np.float32)
    beats = _beat_grid(tempo_bpm, duration_sec, start_sec)
    click = _click(sr)
    for t in beats:
        _add(y, click, round(t * sr), 1.0)
    return SyntheticTrack(_normalise(y), sr, beats, beats[::BEATS_PER_BAR], tempo_bpm)


def drum_pattern(
    *,
    tempo_bpm: float,
    duration_sec: float,
    sr: int = 22050,
    first_bar_position: int = 0,
    bass: bool = False,
    seed: int = 0,
) -> SyntheticTrack:
    """A 4/4 rock pattern: accented kick on 1, softer kick on 3, snare on 2 and 4, eighth hats.

    Args:
        tempo_bpm: [beats/min] tempo.
        duration_sec: [s] length.
        sr: [Hz] sample rate.
        first_bar_position: [beats] 0..3, position in the bar of the track's first beat
            (1 = the track starts on beat 2, so its first downbeat is its 4th beat).
        bass: add a bass line (root on each beat, an octave jump on the downbeat).
        seed: seed of the noise in snares and hats.
    """
    rng = np.random.default_rng(seed)
    y = np.zeros(round(duration_sec * sr), dtype=np.float32)
    beats = _beat_grid(tempo_bpm, duration_sec, 0.0)
    period = 60.0 / tempo_bpm
    kick, snare, hat = _kick(sr), _snare(sr, rng), _hat(sr, rng)
    positions = (np.arange(len(beats)) + first_bar_position) % BEATS_PER_BAR
    for t, pos in zip(beats, positions, strict=True):
        start = round(t * sr)
        if pos in (0, 2):
            _add(y, kick, start, 1.0 if pos == 0 else 0.45)
        else:
            _add(y, snare, start, 0.5)
        _add(y, hat, start, 0.12)
        _add(y, hat, round((t + period / 2) * sr), 0.06)
        if bass:
            _add(y, _bass_note(sr, period, octave_up=pos == 0), start, 0.35)
    return SyntheticTrack(_normalise(y), sr, beats, beats[positions == 0], tempo_bpm)


def _bass_note(sr: int, period: float, *, octave_up: bool) -> np.ndarray:
    t = np.arange(int(0.9 * period * sr)) / sr
    freq = 110.0 if octave_up else 55.0  # [Hz] A2 / A1
    env = np.minimum(1.0, t / 0.005) * np.exp(-t / (0.5 * period))
    return (np.tanh(2.0 * np.sin(2 * np.pi * freq * t)) * env).astype(np.float32)
