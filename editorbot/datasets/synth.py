"""Instruments for the demo-data generator: drums, bass, pads, keys and a lead, in numpy.

Each instrument renders one note (or drum hit) as a mono waveform from a few vectorised numpy
operations — oscillators, an ADSR envelope and a one-pole low-pass — and :func:`place` mixes notes
into a bus. Notes repeat constantly in a song, so renders are cached per (voice, pitch, length,
velocity); a 3-minute arrangement synthesises in about a second.

Methods: subtractive synthesis (oscillator → filter → envelope) and two-operator FM
(Chowning, "The Synthesis of Complex Audio Spectra by Means of Frequency Modulation", 1973,
https://doi.org/10.2307/3680251); drum voices after Gordon Reid's "Synth Secrets" series
(https://www.soundonsound.com/series/synth-secrets-sound-sound).

Shape:
    a note is [shape=(L,)] float32; a bus is [shape=(L,)]; the mix is [shape=(C, L)], C = 2.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

logger = logging.getLogger(__name__)

WAVEFORMS = ("saw", "square", "triangle", "sine")


@dataclass(frozen=True)
class Timbre:
    """How one pitched instrument sounds (chosen per song, so songs differ in texture)."""

    wave: str = "saw"
    """waveform, one of ``WAVEFORMS``."""
    cutoff_hz: float = 2000.0
    """[Hz] one-pole low-pass cutoff."""
    attack_sec: float = 0.005
    """[s] envelope attack."""
    decay_sec: float = 0.2
    """[s] envelope decay to the sustain level."""
    sustain: float = 0.7
    """[0-1] sustain level relative to the peak."""
    release_sec: float = 0.05
    """[s] envelope release after the note's length."""
    detune_cents: float = 0.0
    """[cents] second oscillator's detune (0: one oscillator)."""
    fm_ratio: float = 0.0
    """[ratio] FM modulator/carrier frequency ratio (0: no FM)."""
    fm_index: float = 0.0
    """[rad] FM modulation index at the note start (decays with the envelope)."""
    vibrato_cents: float = 0.0
    """[cents] vibrato depth (5 Hz)."""


def midi_hz(midi: float) -> float:
    """Equal-tempered frequency of a MIDI note number (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def _osc(wave: str, phase: np.ndarray) -> np.ndarray:
    """Naive oscillator on a phase in cycles (aliasing is tamed by the low-pass after it)."""
    frac = phase % 1.0
    if wave == "saw":
        return 2.0 * frac - 1.0
    if wave == "square":
        return np.where(frac < 0.5, 1.0, -1.0)
    if wave == "triangle":
        return 4.0 * np.abs(frac - 0.5) - 1.0
    return np.sin(2.0 * np.pi * phase)


def adsr(n: int, *, sr: int, timbre: Timbre, held: int) -> np.ndarray:
    """Attack-decay-sustain-release envelope, [shape=(n,)]; the release starts at ``held``."""
    t = np.arange(n) / sr
    a = max(timbre.attack_sec, 1e-4)
    attack = np.clip(t / a, 0.0, 1.0)
    decay = timbre.sustain + (1.0 - timbre.sustain) * np.exp(
        -np.maximum(t - a, 0.0) / max(timbre.decay_sec, 1e-4)
    )
    env = np.where(t < a, attack, decay)
    held_sec = held / sr
    release = np.exp(-np.maximum(t - held_sec, 0.0) / max(timbre.release_sec, 1e-4) * 4.0)
    return (env * np.where(t < held_sec, 1.0, release)).astype(np.float32)


def lowpass(y: np.ndarray, *, sr: int, cutoff_hz: float) -> np.ndarray:
    """One-pole low-pass, y[n] = (1 - a) x[n] + a y[n-1], a = exp(-2π fc / sr)."""
    a = float(np.exp(-2.0 * np.pi * min(cutoff_hz, 0.45 * sr) / sr))
    return lfilter([1.0 - a], [1.0, -a], y).astype(np.float32)


def highpass(y: np.ndarray, *, sr: int, cutoff_hz: float) -> np.ndarray:
    """One-pole high-pass: the input minus its low-passed copy."""
    return (y - lowpass(y, sr=sr, cutoff_hz=cutoff_hz)).astype(np.float32)


def tone(midi: float, held: int, *, sr: int, timbre: Timbre) -> np.ndarray:
    """One pitched note lasting ``held`` samples plus its release, [shape=(L,)]."""
    n = held + int(timbre.release_sec * sr) + 1
    t = np.arange(n) / sr
    f = midi_hz(midi)
    if timbre.vibrato_cents:
        # Vibrato fades in over 0.3 s, as a player's would.
        depth = timbre.vibrato_cents / 1200.0 * np.minimum(t / 0.3, 1.0)
        phase = np.cumsum(f * 2.0 ** (depth * np.sin(2 * np.pi * 5.0 * t))) / sr
    else:
        phase = f * t
    env = adsr(n, sr=sr, timbre=timbre, held=held)
    if timbre.fm_ratio:
        mod = timbre.fm_index * env * np.sin(2 * np.pi * f * timbre.fm_ratio * t)
        y = np.sin(2 * np.pi * phase + mod)
    else:
        y = _osc(timbre.wave, phase)
        if timbre.detune_cents:
            y = 0.5 * (y + _osc(timbre.wave, phase * 2.0 ** (timbre.detune_cents / 1200.0) + 0.25))
        y = lowpass(y, sr=sr, cutoff_hz=timbre.cutoff_hz)
    return (y * env).astype(np.float32)


def kick(*, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Sine with a fast downward pitch sweep (150 → 45 Hz) and a click, about 0.45 s."""
    n = int(0.45 * sr)
    t = np.arange(n) / sr
    f_hi, f_lo = rng.uniform(120, 170), rng.uniform(42, 55)
    f = f_lo + (f_hi - f_lo) * np.exp(-t / 0.03)
    body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-t / rng.uniform(0.12, 0.25))
    click = rng.standard_normal(n) * np.exp(-t / 0.002) * 0.3
    return (body + click).astype(np.float32)


def snare(*, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Band-limited noise burst plus a 180-220 Hz body, about 0.3 s."""
    n = int(0.3 * sr)
    t = np.arange(n) / sr
    noise = highpass(rng.standard_normal(n).astype(np.float32), sr=sr, cutoff_hz=1500.0)
    noise = lowpass(noise, sr=sr, cutoff_hz=rng.uniform(5000, 9000))
    body = np.sin(2 * np.pi * rng.uniform(180, 220) * t) * np.exp(-t / 0.04)
    return (1.2 * noise * np.exp(-t / rng.uniform(0.06, 0.12)) + 0.6 * body).astype(np.float32)


def hat(*, sr: int, rng: np.random.Generator, open_: bool = False) -> np.ndarray:
    """High-passed noise: closed (40 ms decay) or open (250 ms decay)."""
    length_sec, decay_sec = (0.5, 0.25) if open_ else (0.08, rng.uniform(0.015, 0.03))
    n = int(length_sec * sr)
    t = np.arange(n) / sr
    noise = highpass(rng.standard_normal(n).astype(np.float32), sr=sr, cutoff_hz=7000.0)
    return (noise * np.exp(-t / decay_sec) * 0.7).astype(np.float32)


def crash(*, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A crash cymbal: high-passed noise with a 0.8 s decay, 2 s long."""
    n = int(2.0 * sr)
    t = np.arange(n) / sr
    noise = highpass(rng.standard_normal(n).astype(np.float32), sr=sr, cutoff_hz=4000.0)
    return (noise * np.exp(-t / 0.8) * 0.5).astype(np.float32)


def place(bus: np.ndarray, start_sample: int, y: np.ndarray, gain: float = 1.0) -> None:
    """Mix ``y`` into ``bus`` at ``start_sample`` (cut off at the bus's end), in place."""
    L = bus.shape[-1]
    if start_sample >= L:
        return
    n = min(y.shape[-1], L - start_sample)
    if gain == 1.0:
        bus[..., start_sample : start_sample + n] += y[..., :n]
    else:
        bus[..., start_sample : start_sample + n] += np.float32(gain) * y[..., :n]


def pan_gains(position: float) -> tuple[float, float]:
    """Equal-power (left, right) gains for ``position`` in [-1 (left), 1 (right)]."""
    angle = (position + 1.0) * np.pi / 4.0
    return float(np.cos(angle)), float(np.sin(angle))


def stereo_echo(y: np.ndarray, *, sr: int, delay_sec: float, mix: float) -> np.ndarray:
    """Ping-pong style echo: the left channel delayed by ``delay_sec``, the right by 1.5×.

    Shape: (2, L) -> (2, L). Adds width and space to pads and leads without a reverb.
    """
    C, L = y.shape
    out = y.copy()
    for c, factor in enumerate((1.0, 1.5)):
        d = int(delay_sec * factor * sr)
        if d < L:
            out[c, d:] += mix * y[1 - c, : L - d]
    return out


class NoteCache:
    """Renders of pitched notes, keyed by (instrument name, midi, held samples)."""

    def __init__(self, *, sr: int) -> None:
        self.sr = sr
        self._notes: dict[tuple[str, float, int], np.ndarray] = {}

    def note(self, name: str, midi: float, held: int, timbre: Timbre) -> np.ndarray:
        key = (name, float(midi), int(held))
        if key not in self._notes:
            self._notes[key] = tone(midi, held, sr=self.sr, timbre=timbre)
        return self._notes[key]
