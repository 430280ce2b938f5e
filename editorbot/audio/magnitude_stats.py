"""Per-frame statistics of an STFT that need every bin, computed in one pass per frame.

Each frame's power ``|X|^2`` (kept for the mel and chroma products), its magnitude and the
magnitude moments behind centroid and bandwidth are computed in one loop, and the magnitude is
used while it is still in cache for the rest.

Spectral contrast (mean of each octave band's largest and smallest bins), spectral flatness
(geometric over arithmetic mean of the power) and spectral rolloff (first bin where the
cumulative magnitude reaches a share of the total) each need every bin of every frame and a
non-linear step (a selection, a logarithm, a threshold). Done as tensor operations they cost
several full passes over the spectrum (sorting or k rounds of max/min per band, a log of every
bin, a full cumulative sum); one compiled loop per frame reads the row once while it is in
cache:

- contrast: a sorted buffer of the band's ``k`` largest and ``k`` smallest values (k <= 9),
  exactly the means of the ends of ``np.sort`` in ``librosa.feature.spectral_contrast``;
- flatness: the sum of logs is taken as the log of a float64 running product, renormalised to
  [0.5, 1) with ``frexp`` every 16 bins (one log per frame; exact to float64 rounding while
  ``|X|^2 < 1e19``, i.e. any signal with ``|y| < 10^6``), as
  ``librosa.feature.spectral_flatness`` (power 2, ``amin`` 1e-10);
- rolloff: a float32 running sum stopped at the threshold, as ``librosa.feature.spectral_rolloff``.

Definitions: https://librosa.org/doc/0.11.0/feature.html (contrast after Jiang et al. 2002,
https://doi.org/10.1109/ICME.2002.1035731). The loop is compiled with numba (librosa's own
JIT dependency), cached on disk after the first call.

Shape:
    X: [shape=(T, F)] complex64 STFT, frame-major (contiguous rows).
    Outputs: [shape=(T,)], [shape=(T, 3)], [shape=(T, 7)] or [shape=(T, F)] (the power).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import TYPE_CHECKING, NamedTuple

import librosa
import numba
import numpy as np
import torch

from editorbot.errors import ParameterError

if TYPE_CHECKING:
    from editorbot.audio.features import FeatureConfig

N_CONTRAST_BANDS = 6  # octave bands above contrast_fmin; 7 columns with the band below it
_FLATNESS_AMIN = 1e-10  # librosa.feature.spectral_flatness's floor on the power
_LOG_GROUP = 16  # [bins] multiplied in float64 before the product is renormalised
_LN2 = math.log(2.0)
# Reassociation lets LLVM vectorise the float32 row sum; no flag that assumes finite values.
_REASSOCIATE = {"reassoc", "contract", "nsz"}


class MagnitudeStats(NamedTuple):
    """Per-frame statistics from :func:`magnitude_stats`."""

    P: torch.Tensor
    """[shape=(T, F)] power spectrum ``|X|^2``."""
    moments: torch.Tensor
    """[shape=(T, 3)] sums of the magnitude weighted by 1, f and f^2 (f: bin frequency [Hz])."""
    peak: torch.Tensor
    """[shape=(T, 7)] mean of each contrast band's largest bins (magnitude)."""
    valley: torch.Tensor
    """[shape=(T, 7)] mean of each contrast band's smallest bins (magnitude)."""
    flatness: torch.Tensor
    """[shape=(T,)] spectral flatness of the power, in [0, 1]."""
    rolloff_bin: torch.Tensor
    """[shape=(T,)] int64 first bin whose cumulative magnitude reaches the rolloff share."""


def magnitude_stats(X: torch.Tensor, *, sr: int, config: FeatureConfig) -> MagnitudeStats:
    """Power, magnitude moments, contrast, flatness and rolloff bin of each frame of ``X``.

    Args:
        X: [shape=(T, F)] complex64 STFT, frame-major, F = 1 + n_fft // 2.
        sr: [Hz] sample rate.
        config: feature settings (n_fft, contrast_fmin, contrast_quantile, rolloff_percent).

    Returns:
        The statistics as tensors (see :class:`MagnitudeStats`).
    """
    T, F = X.shape
    bands = np.array(
        _contrast_bands(sr, config.n_fft, config.contrast_fmin, config.contrast_quantile),
        dtype=np.int64,
    )
    freq = librosa.fft_frequencies(sr=sr, n_fft=config.n_fft).astype(np.float32)
    P, moments = np.empty((T, F), np.float32), np.empty((T, 3), np.float32)
    peak, valley = np.empty((T, len(bands)), np.float32), np.empty((T, len(bands)), np.float32)
    flatness, rolloff = np.empty(T, np.float32), np.empty(T, np.int64)
    X_np = np.ascontiguousarray(torch.view_as_real(X).numpy())  # (T, F, 2): re, im
    out = (P, moments, peak, valley, flatness, rolloff)
    _frame_loop(X_np, bands, freq, np.float32(config.rolloff_percent), *out)
    return MagnitudeStats(*(torch.from_numpy(a) for a in out))


@functools.lru_cache(maxsize=8)
def _contrast_bands(
    sr: int, n_fft: int, fmin: float, quantile: float
) -> tuple[tuple[int, int, int], ...]:
    """(first bin, stop bin, bins averaged) per band, as librosa.feature.spectral_contrast."""
    freq = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    edges = np.concatenate([[0.0], fmin * 2.0 ** np.arange(N_CONTRAST_BANDS + 1)])
    if edges[-2] >= sr / 2:
        raise ParameterError(
            f"FeatureConfig: contrast_fmin={fmin} Hz puts contrast bands above Nyquist "
            f"({sr / 2:.0f} Hz); lower contrast_fmin"
        )
    bands = []
    for k, (f_low, f_high) in enumerate(itertools.pairwise(edges)):
        idx = np.flatnonzero((freq >= f_low) & (freq <= f_high))
        first = int(idx[0]) - (1 if k > 0 else 0)  # librosa adds the bin just below the band
        last = len(freq) - 1 if k == N_CONTRAST_BANDS else int(idx[-1])
        n_quantile = max(int(np.rint(quantile * (last - first + 1))), 1)
        # librosa drops the band's top bin (it starts the next band), except in the last band.
        stop = last + 1 if k == N_CONTRAST_BANDS else last
        # a quantile wider than the band averages the whole band (numpy's slice end clips)
        bands.append((first, stop, min(n_quantile, stop - first)))
    return tuple(bands)


@numba.njit(cache=True, nogil=True)
def _frame_loop(X, bands, freq, rolloff_percent, P, moments, peak, valley, flatness, rolloff):
    """Fill the outputs of :func:`magnitude_stats` from ``X`` [T, F, 2], one frame at a time.

    Contrast compares the int32 bit patterns of the magnitudes: for non-negative floats they
    order exactly as the values, and integer max/min/compare loops vectorise (float ones do
    not, for NaN semantics).
    """
    T, F, _ = X.shape
    S = np.empty(F, np.float32)  # the frame's magnitude, kept in cache
    bits = S.view(np.int32)
    k_max = int(bands[:, 2].max())
    top, bottom = np.empty(k_max, np.int32), np.empty(k_max, np.int32)
    top_values, bottom_values = top.view(np.float32), bottom.view(np.float32)
    for t in range(T):
        moments[t, 0], moments[t, 1], moments[t, 2] = _power_magnitude(X[t], freq, P[t], S)
        for b in range(bands.shape[0]):
            k = bands[b, 2]
            _band_extremes(bits, bands[b, 0], bands[b, 1], top[:k], bottom[:k])
            peak[t, b] = _mean(top_values, k)
            valley[t, b] = _mean(bottom_values, k)
        flatness[t] = _flatness(P[t])
        rolloff[t] = _rolloff_bin(S, rolloff_percent)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _power_magnitude(x, freq, p, s):
    """``p = re^2 + im^2``, ``s = sqrt(p)`` of one frame; returns the sums of s, f s, f^2 s.

    All values are finite (the signal is checked), so fastmath only reorders and vectorises.
    """
    m0 = m1 = m2 = np.float32(0.0)
    for i in range(x.shape[0]):
        p[i] = x[i, 0] * x[i, 0] + x[i, 1] * x[i, 1]
        s[i] = np.sqrt(p[i])
        m0 += s[i]
        m1 += freq[i] * s[i]
        m2 += freq[i] * freq[i] * s[i]
    return m0, m1, m2


@numba.njit(cache=True, nogil=True, inline="always")
def _mean(values, k):
    """Mean of ``values[:k]``, summed in float64."""
    total = 0.0
    for j in range(k):
        total += values[j]
    return total / k


@numba.njit(cache=True, nogil=True, inline="always")
def _band_extremes(bits, first, stop, top, bottom):
    """The k largest (``top``) and k smallest (``bottom``) of ``bits[first:stop]``, k = len(top).

    Seeded with the bounds from :func:`_group_cuts`, then one insertion pass per side.
    """
    k = top.shape[0]
    top_cut, bottom_cut = _group_cuts(bits, first, stop, k)
    top[:] = top_cut
    bottom[:] = bottom_cut
    _insert_top(bits, first, stop, top, top_cut)
    _insert_bottom(bits, first, stop, bottom, bottom_cut)


@numba.njit(cache=True, nogil=True, inline="always")
def _span_max_min(bits, lo, hi):
    """Max and min of ``bits[lo:hi]``."""
    high = low = bits[lo]
    for i in range(lo + 1, hi):
        high = max(high, bits[i])
        low = min(low, bits[i])
    return high, low


@numba.njit(cache=True, nogil=True, inline="always")
def _insert_top(bits, lo, hi, buffer, cut):
    """Insert ``bits[lo:hi]`` above ``cut`` into the descending ``buffer``; returns its last."""
    k = buffer.shape[0]
    for i in range(lo, hi):
        x = bits[i]
        if x > cut:  # shift smaller values down, put x in its place
            j = k - 1
            while j > 0 and buffer[j - 1] < x:
                buffer[j] = buffer[j - 1]
                j -= 1
            buffer[j] = x
            cut = buffer[k - 1]
    return cut


@numba.njit(cache=True, nogil=True, inline="always")
def _insert_bottom(bits, lo, hi, buffer, cut):
    """Insert ``bits[lo:hi]`` below ``cut`` into the ascending ``buffer``; returns its last."""
    k = buffer.shape[0]
    for i in range(lo, hi):
        x = bits[i]
        if x < cut:
            j = k - 1
            while j > 0 and buffer[j - 1] > x:
                buffer[j] = buffer[j - 1]
                j -= 1
            buffer[j] = x
            cut = buffer[k - 1]
    return cut


@numba.njit(cache=True, nogil=True, inline="always")
def _group_cuts(bits, first, stop, k):
    """Bounds on the k-th largest and k-th smallest of ``bits[first:stop]`` (k <= stop - first).

    Split into k groups: their k maxima are values at distinct bins, so the k-th largest is at
    least the smallest group maximum (and the k-th smallest at most the largest group minimum).
    Seeded with k copies of that bound, the insertion buffer only sees the values beyond it and
    still ends with exactly the k largest (values equal to the bound add the bound).
    """
    size = (stop - first) // k
    top_cut, bottom_cut = _span_max_min(bits, first, first + size)
    for j in range(1, k):
        lo = first + j * size
        high, low = _span_max_min(bits, lo, stop if j == k - 1 else lo + size)
        top_cut = min(top_cut, high)
        bottom_cut = max(bottom_cut, low)
    return top_cut, bottom_cut


@numba.njit(cache=True, nogil=True, fastmath=True)
def _flatness(row):
    """exp(mean(log(p))) / mean(p) with p = max(row, amin) of a power row, from one log.

    The sum of logs is the log of the product of all bins; the running product is brought
    back to [0.5, 1) after every 16 bins (``frexp``: mantissa and a power of 2 kept apart),
    so it neither underflows nor overflows while ``p < 1e19``.
    """
    F = row.shape[0]
    mantissa = 1.0
    exponent = 0
    total = 0.0
    for start in range(0, F, _LOG_GROUP):
        for i in range(start, min(start + _LOG_GROUP, F)):
            p = max(np.float64(row[i]), _FLATNESS_AMIN)
            mantissa *= p
            total += p
        mantissa, e = math.frexp(mantissa)
        exponent += e
    log_sum = np.log(mantissa) + exponent * _LN2
    return np.exp(log_sum / F) / (total / F)


@numba.njit(cache=True, nogil=True, fastmath=_REASSOCIATE)
def _row_sum(row):
    """Sum of a float32 row (reassociated: vectorised)."""
    total = np.float32(0.0)
    for i in range(row.shape[0]):
        total += row[i]
    return total


@numba.njit(cache=True, nogil=True)
def _rolloff_bin(row, rolloff_percent):
    """First bin whose float32 cumulative sum reaches ``rolloff_percent`` of the row's sum."""
    F = row.shape[0]
    threshold = rolloff_percent * _row_sum(row)
    running = np.float32(0.0)
    for i in range(F):
        running += row[i]
        if running >= threshold:
            return i
    return F - 1
