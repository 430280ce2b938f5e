"""The signal processing behind each effect type of the edit language.

Every function takes [shape=(C, N)] float32 audio and returns float32 audio of the same
channels; only :func:`time_stretch` changes the length. Amount values come from the action
table (:mod:`editorbot.editing.actions`); this module holds no amount numbers.

Methods:
    - shelving EQ: RBJ Audio EQ Cookbook biquads via ``torchaudio.functional.bass_biquad`` /
      ``treble_biquad`` (https://www.w3.org/TR/audio-eq-cookbook/);
    - overdrive: SoX's soft-clipping overdrive via ``torchaudio.functional.overdrive``
      (https://sox.sourceforge.net/sox.html);
    - time stretch: the phase vocoder (Flanagan & Golden 1966; Laroche & Dolson 1999,
      https://doi.org/10.1109/89.759041) via ``torchaudio.functional.phase_vocoder``;
    - pitch shift: phase-vocoder stretch then band-limited resampling (``resample``);
    - reverb: convolution with exponentially decaying noise, the statistical room model of
      Moorer 1979 (https://doi.org/10.2307/3680280), via ``torchaudio.functional.fftconvolve``.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
import torch
import torchaudio.functional as AF

from editorbot.editing.actions import EQ_HIGH_HZ, EQ_LOW_HZ, ActionType

logger = logging.getLogger(__name__)


def _t(y: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))


def slice_padded(y: np.ndarray, start: int, end: int) -> np.ndarray:
    """``y[:, start:end]``, zero where the range runs past either end. [shape=(C, end - start)]."""
    C, N = y.shape
    if start >= 0 and end <= N:
        return y[:, start:end]
    out = np.zeros((C, end - start), dtype=np.float32)
    lo, hi = max(start, 0), min(end, N)
    if hi > lo:
        out[:, lo - start : hi - start] = y[:, lo:hi]
    return out


@lru_cache(maxsize=64)
def crossfade_windows(n: int, *, power: bool) -> tuple[np.ndarray, np.ndarray]:
    """[shape=(n,)] fade-out and fade-in gains: equal-power (cos/sin) or linear (equal-gain).

    Equal power suits uncorrelated material (a jump in the source), equal gain correlated
    material (the same audio under two effects); see
    https://www.dsprelated.com/freebooks/pasp/Equal_Power_Crossfade.html.
    """
    t = (np.arange(n) + 0.5) / n
    if power:
        return np.cos(0.5 * np.pi * t).astype(np.float32), np.sin(0.5 * np.pi * t).astype(
            np.float32
        )
    return (1.0 - t).astype(np.float32), t.astype(np.float32)


def db_to_amplitude(db: float) -> float:
    """[dB] -> linear amplitude factor (``-inf`` -> 0)."""
    return 0.0 if math.isinf(db) and db < 0 else float(10.0 ** (db / 20.0))


def apply_gain(y: np.ndarray, *, gain_db: float) -> np.ndarray:
    """Scale by ``gain_db`` [dB]. [shape=(C, N)]."""
    return (y * np.float32(db_to_amplitude(gain_db))).astype(np.float32, copy=False)


def fade_curve(n: int, *, depth_db: float, fade_in: bool) -> np.ndarray:
    """[shape=(n,)] equal-power fade gain between the floor ``-depth_db`` [dB] and 1.

    The power moves along ``cos²``/``sin²`` between floor² and 1, so the perceived level
    changes evenly; the curve is monotone.
    """
    floor = db_to_amplitude(-depth_db)
    t = (np.arange(n, dtype=np.float64) + 0.5) / max(n, 1)
    rise = np.sin(0.5 * np.pi * t) ** 2
    power = floor**2 + (1.0 - floor**2) * (rise if fade_in else rise[::-1])
    return np.sqrt(power).astype(np.float32)


def shelf_eq(y: np.ndarray, *, sr: int, gain_db: float, freq_hz: float, low: bool) -> np.ndarray:
    """Low or high shelf of ``gain_db`` [dB] at ``freq_hz`` [Hz] (RBJ biquad, Q = 0.707)."""
    fn = AF.bass_biquad if low else AF.treble_biquad
    out = fn(_t(y).double(), sr, gain_db, central_freq=freq_hz, Q=0.707)
    return out.float().numpy()


def overdrive(y: np.ndarray, *, drive_db: float, colour: float = 20.0) -> np.ndarray:
    """Soft-clipping overdrive with ``drive_db`` [dB] pre-gain, output at the input's RMS."""
    out = AF.overdrive(_t(y), gain=drive_db, colour=colour).numpy()
    out = out - out.mean(axis=-1, keepdims=True)  # the colour offset adds DC
    rms_in = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    rms_out = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    return (out * np.float32(rms_in / rms_out if rms_out > 0 else 1.0)).astype(np.float32)


def time_stretch(
    y: np.ndarray, *, rate: float, n_fft: int = 2048, hop_length: int = 512
) -> np.ndarray:
    """Play ``rate`` times faster with the pitch kept (phase vocoder).

    Shape:
        y: (C, N) -> (C, round(N / rate)).
    """
    C, N = y.shape
    n_out = round(N / rate)
    window = torch.hann_window(n_fft, dtype=torch.float64)
    x = _t(y).double()
    S = torch.stft(x, n_fft, hop_length, window=window, return_complex=True)  # [C, F, T]
    phase_advance = torch.linspace(0, math.pi * hop_length, S.shape[-2], dtype=torch.float64)
    S_st = AF.phase_vocoder(S, rate, phase_advance[..., None])
    out = torch.istft(S_st, n_fft, hop_length, window=window, length=n_out)
    return out.float().numpy()


def pitch_shift(
    y: np.ndarray, *, sr: int, n_steps: float, n_fft: int = 2048, hop_length: int = 512
) -> np.ndarray:
    """Shift by ``n_steps`` semitones, duration kept. [shape=(C, N)].

    Stretch by the pitch ratio with the phase vocoder, then resample back to the original
    length. The ratio is rounded to a fraction p/q with q <= 32 (at most about 1 cent off for
    the table's semitone steps) so the band-limited resampler stays small and fast; the
    exact irrational ratio makes ``torchaudio.functional.pitch_shift`` take seconds.
    """
    C, N = y.shape
    ratio = Fraction(2.0 ** (n_steps / 12.0)).limit_denominator(32)
    p, q = ratio.numerator, ratio.denominator
    stretched = time_stretch(y, rate=q / p, n_fft=n_fft, hop_length=hop_length)  # N * p / q
    out = AF.resample(_t(stretched), p, q).numpy()  # length * q / p: back to N, pitch * p / q
    if out.shape[1] < N:
        out = np.pad(out, ((0, 0), (0, N - out.shape[1])))
    return np.ascontiguousarray(out[:, :N])


def room_response(*, sr: int, rt60_sec: float, n_channels: int, seed: int = 0) -> np.ndarray:
    """[shape=(C, K)] exponentially decaying noise reaching -60 dB at ``rt60_sec`` [s].

    Unit energy per channel; channels are decorrelated (independent noise) for width.
    """
    K = max(1, round(rt60_sec * sr))
    rng = np.random.default_rng(seed)
    t = np.arange(K) / sr
    env = 10.0 ** (-3.0 * t / rt60_sec)  # -60 dB = 10**(-3) amplitude at t = rt60
    ir = rng.standard_normal((n_channels, K)) * env
    ir /= np.sqrt((ir**2).sum(axis=-1, keepdims=True))
    return ir.astype(np.float32)


def reverb(
    y: np.ndarray, *, sr: int, rt60_sec: float, wet: float = 0.5, seed: int = 0
) -> np.ndarray:
    """Dry plus ``wet`` times the room response; the tail past the input's end is dropped."""
    C, N = y.shape
    ir = room_response(sr=sr, rt60_sec=rt60_sec, n_channels=C, seed=seed)
    wet_y = AF.fftconvolve(_t(y), _t(ir))[..., :N].numpy()
    return (y + np.float32(wet) * wet_y).astype(np.float32)


def apply_effect(
    x: np.ndarray,
    t: ActionType,
    v: float,
    *,
    sr: int,
    pre: int,
    n: int,
    n_fft: int = 2048,
    hop_length: int = 512,
    reverb_wet: float = 0.5,
    distortion_colour: float = 20.0,
    seed: int = 0,
) -> np.ndarray:
    """Apply effect type ``t`` with table value ``v`` to ``x`` (``pre`` samples of context,
    ``n`` samples of body, then context). Only SPEED_* change the length.
    """
    if t == ActionType.GAIN:
        return apply_gain(x, gain_db=v)
    if t in (ActionType.FADE_IN, ActionType.FADE_OUT):
        return x * _fade_envelope(x.shape[1], pre=pre, n=n, depth_db=v, t=t)
    if t in (ActionType.EQ_LOW, ActionType.EQ_HIGH):
        low = t == ActionType.EQ_LOW
        freq = EQ_LOW_HZ if low else EQ_HIGH_HZ
        return shelf_eq(x, sr=sr, gain_db=v, freq_hz=freq, low=low)
    if t in (ActionType.SPEED_UP, ActionType.SPEED_DOWN):
        return time_stretch(x, rate=v, n_fft=n_fft, hop_length=hop_length)
    if t in (ActionType.PITCH_UP, ActionType.PITCH_DOWN):
        return pitch_shift(x, sr=sr, n_steps=v, n_fft=n_fft, hop_length=hop_length)
    if t == ActionType.DISTORTION:
        return overdrive(x, drive_db=v, colour=distortion_colour)
    if t == ActionType.REVERB:
        return reverb(x, sr=sr, rt60_sec=v, wet=reverb_wet, seed=seed)
    raise AssertionError(f"no effect for {t.name}")  # structural types never get here


def _fade_envelope(total: int, *, pre: int, n: int, depth_db: float, t: ActionType) -> np.ndarray:
    """[shape=(total,)] the fade over the body; flat at its end values over the context."""
    fade_in = t == ActionType.FADE_IN
    curve = fade_curve(n, depth_db=depth_db, fade_in=fade_in)
    env = np.empty(total, dtype=np.float32)
    env[:pre] = curve[0] if n else 1.0
    env[pre : pre + n] = curve
    env[pre + n :] = curve[-1] if n else 1.0
    return env
