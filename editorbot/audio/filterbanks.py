"""Spectral filterbanks and frequency grids, as librosa 0.11 defines them, in numpy alone.

The feature path needs librosa's mel and chroma filterbanks, its FFT bin frequencies, its
time-to-frame rounding and an orthonormal DCT-II. Importing librosa for them costs seconds
(numba compilation, scipy.signal), which the edit command cannot afford, so they are written
here from their definitions, in the same float64 operations, so that they equal librosa's
arrays to the last bit (tests compare them).

- mel: Slaney's Auditory Toolbox scale (linear below 1 kHz, logarithmic above) with
  triangular filters normalised to equal area (``librosa.filters.mel``, ``htk=False``,
  ``norm='slaney'``); Slaney 1998, https://engineering.purdue.edu/~malcolm/interval/1998-010/.
- chroma: Ellis's chroma bank, Gaussian bumps around each pitch class in the
  octave-wrapped log-frequency axis, weighted by a Gaussian over octaves centred on
  ``ctroct`` (``librosa.filters.chroma``); https://www.ee.columbia.edu/~dpwe/resources/matlab/chroma-ansyn/.
- DCT: type II, orthonormal (``scipy.fft.dct(norm='ortho')``), the MFCC basis.

Shape:
    mel: [shape=(n_mels, 1 + n_fft // 2)]; chroma: [shape=(12, 1 + n_fft // 2)];
    dct: [shape=(n_out, n_in)].
"""

from __future__ import annotations

import numpy as np

_MEL_LINEAR_HZ_PER_MEL = 200.0 / 3  # [Hz/mel] below the break
_MEL_BREAK_HZ = 1000.0  # [Hz] where the scale turns logarithmic
_MEL_LOG_STEP = np.log(6.4) / 27.0  # [ln(Hz)/mel] above the break
N_CHROMA = 12  # [bins] pitch classes per octave
_CHROMA_CENTRE_OCTAVE = 5.0  # [octaves above A0] centre of librosa's octave weighting
_CHROMA_OCTAVE_WIDTH = 2.0  # [octaves] Gaussian half-width of that weighting
_A440_HZ = 440.0  # [Hz] reference pitch at zero tuning


def fft_frequencies(*, sr: float, n_fft: int) -> np.ndarray:
    """[Hz] centre frequency of each rFFT bin, [shape=(1 + n_fft // 2,)] float64."""
    return np.fft.rfftfreq(n=n_fft, d=1.0 / sr)


def time_to_frames(times: np.ndarray, *, sr: float, hop_length: int) -> np.ndarray:
    """[frames] index of the frame each time [s] falls in (int; times truncated to samples)."""
    samples = (np.asanyarray(times) * sr).astype(int)  # [s] * [samples/s], toward zero
    return np.asarray(samples // hop_length, dtype=int)


def hz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    """[mel] Slaney's mel value of each frequency [Hz] (float64)."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    mels = frequencies / _MEL_LINEAR_HZ_PER_MEL
    log_part = frequencies >= _MEL_BREAK_HZ
    break_mel = _MEL_BREAK_HZ / _MEL_LINEAR_HZ_PER_MEL
    mels[log_part] = break_mel + np.log(frequencies[log_part] / _MEL_BREAK_HZ) / _MEL_LOG_STEP
    return mels


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """[Hz] frequency of each Slaney mel value (float64); the inverse of :func:`hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    freqs = _MEL_LINEAR_HZ_PER_MEL * mels
    break_mel = _MEL_BREAK_HZ / _MEL_LINEAR_HZ_PER_MEL
    log_part = mels >= break_mel
    freqs[log_part] = _MEL_BREAK_HZ * np.exp(_MEL_LOG_STEP * (mels[log_part] - break_mel))
    return freqs


def mel_frequencies(n_mels: int, *, fmax: float, fmin: float = 0.0) -> np.ndarray:
    """[Hz] ``n_mels`` frequencies evenly spaced on the Slaney mel scale, fmin..fmax. (n_mels,)."""
    low, high = hz_to_mel(np.array([fmin, fmax]))  # [mel]
    return mel_to_hz(np.linspace(low, high, n_mels))


def mel_filterbank(*, sr: float, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-normalised triangular mel filters from 0 Hz to Nyquist, as librosa.filters.mel.

    Returns:
        [shape=(n_mels, 1 + n_fft // 2)] float32 weights.
    """
    fft_hz = fft_frequencies(sr=sr, n_fft=n_fft)
    lowest, highest = hz_to_mel(np.array([0.0, sr / 2]))  # [mel] 0 Hz and Nyquist
    edges = mel_to_hz(np.linspace(lowest, highest, n_mels + 2))  # [Hz] filter edges
    widths = np.diff(edges)  # [Hz] between consecutive filter edges
    ramps = np.subtract.outer(edges, fft_hz)  # [Hz] edge minus bin frequency
    weights = np.zeros((n_mels, fft_hz.size), dtype=np.float32)
    for i in range(n_mels):
        rising = -ramps[i] / widths[i]
        falling = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # equal area: 2 / [Hz] filter width
    return weights


def chroma_filterbank(*, sr: float, n_fft: int, tuning: float = 0.0) -> np.ndarray:
    """Ellis's 12-bin chroma filters starting at C, as librosa.filters.chroma's defaults.

    Args:
        sr: [Hz] sample rate.
        n_fft: [samples] FFT length.
        tuning: [fraction of a chroma bin] offset of the reference pitch from A440.

    Returns:
        [shape=(12, 1 + n_fft // 2)] float32 weights.
    """
    reference_hz = _A440_HZ * 2.0 ** (tuning / N_CHROMA)
    bin_hz = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    # [chroma bins] above A0 (= reference / 16) of each FFT bin; bin 0 (DC) is placed 1.5
    # octaves below bin 1, as Ellis does
    position = N_CHROMA * np.log2(bin_hz / (float(reference_hz) / 16))
    position = np.concatenate(([position[0] - 1.5 * N_CHROMA], position))
    width = np.concatenate((np.maximum(position[1:] - position[:-1], 1.0), [1]))
    distance = np.subtract.outer(position, np.arange(0, N_CHROMA, dtype="d")).T
    half = np.round(float(N_CHROMA) / 2)
    distance = np.remainder(distance + half + 10 * N_CHROMA, N_CHROMA) - half  # wrapped
    weights = np.exp(-0.5 * (2 * distance / np.tile(width, (N_CHROMA, 1))) ** 2)
    norm = np.sum(np.abs(weights) ** 2, axis=0, keepdims=True) ** (1.0 / 2)  # unit L2 columns
    norm[norm < np.finfo(weights.dtype).tiny] = 1.0
    weights = weights / norm
    octaves = position / N_CHROMA
    weights *= np.tile(
        np.exp(-0.5 * ((octaves - _CHROMA_CENTRE_OCTAVE) / _CHROMA_OCTAVE_WIDTH) ** 2),
        (N_CHROMA, 1),
    )
    weights = np.roll(weights, -3, axis=0)  # start at C, 3 semitones above A
    return np.ascontiguousarray(weights[:, : 1 + n_fft // 2], dtype=np.float32)


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II basis: ``basis @ x`` is ``scipy.fft.dct(x, norm='ortho')[:n_out]``.

    Returns:
        [shape=(n_out, n_in)] float64.
    """
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))
    basis[0] *= np.sqrt(0.5)  # the constant term's norm
    return basis
