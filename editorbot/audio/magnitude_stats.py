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

- contrast: sorted buffers of the band's ``k`` largest and ``k`` smallest values (k <= 9),
  filled in one insertion pass over the band from bounds that k group maxima and minima
  give, exactly the means of the ends of ``np.sort`` in ``librosa.feature.spectral_contrast``;
- flatness: the sum of logs is taken as the log of float64 running products (8 interleaved
  ones, so that the multiplications do not wait on each other), each renormalised to
  [0.5, 1) with ``frexp`` after every 16 factors (one log per frame; exact to float64 rounding
  while ``|X|^2 < 1e19``, i.e. any signal with ``|y| < 10^6``), as
  ``librosa.feature.spectral_flatness`` (power 2, ``amin`` 1e-10);
- rolloff: a float32 running sum stopped at the threshold, as ``librosa.feature.spectral_rolloff``.

Definitions: https://librosa.org/doc/0.11.0/feature.html (contrast after Jiang et al. 2002,
https://doi.org/10.1109/ICME.2002.1035731). The loop is compiled with numba (librosa's own
JIT dependency), cached on disk after the first call.

The caller may pass the STFT a block of frames at a time: the statistics go into rows of
whole-track arrays, the power into a block-sized buffer that the caller reuses.

Shape:
    X: [shape=(T, F)] complex64 STFT, frame-major (contiguous rows).
    Outputs: [shape=(T,)], [shape=(T, 3)], [shape=(T, 7)] or [shape=(T, F)] (the power).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import TYPE_CHECKING, NamedTuple

import numba
import numpy as np
import torch

from editorbot.audio.filterbanks import fft_frequencies
from editorbot.errors import ParameterError

if TYPE_CHECKING:
    from editorbot.audio.feature_config import FeatureConfig

N_CONTRAST_BANDS = 6  # octave bands above contrast_fmin; 7 columns with the band below it
_FLATNESS_AMIN = 1e-10  # librosa.feature.spectral_flatness's floor on the power
_LOG_GROUP = 16  # [bins] multiplied into one float64 product before it is renormalised
_LOG_LANES = 8  # interleaved running products (hand-unrolled in _flatness)
_LN2 = math.log(2.0)
# Reassociation lets LLVM vectorise the float32 row sum; no flag that assumes finite values.
_REASSOCIATE = {"reassoc", "contract", "nsz"}


class MagnitudeStats(NamedTuple):
    """Per-frame statistics from :func:`magnitude_stats` (numpy arrays, T frames)."""

    moments: np.ndarray
    """[shape=(T, 3)] sums of the magnitude weighted by 1, f and f^2 (f: bin frequency [Hz])."""
    peak: np.ndarray
    """[shape=(T, 7)] mean of each contrast band's largest bins (magnitude)."""
    valley: np.ndarray
    """[shape=(T, 7)] mean of each contrast band's smallest bins (magnitude)."""
    flatness: np.ndarray
    """[shape=(T,)] spectral flatness of the power, in [0, 1]."""
    rolloff_bin: np.ndarray
    """[shape=(T,)] int64 first bin whose cumulative magnitude reaches the rolloff share."""


def empty_stats(n_frames: int) -> MagnitudeStats:
    """Uninitialised :class:`MagnitudeStats` for ``n_frames`` frames."""
    n_bands = N_CONTRAST_BANDS + 1
    return MagnitudeStats(
        moments=np.empty((n_frames, 3), np.float32),
        peak=np.empty((n_frames, n_bands), np.float32),
        valley=np.empty((n_frames, n_bands), np.float32),
        flatness=np.empty(n_frames, np.float32),
        rolloff_bin=np.empty(n_frames, np.int64),
    )


def magnitude_stats(
    X: torch.Tensor,
    *,
    sr: int,
    config: FeatureConfig,
    P: np.ndarray,
    out: MagnitudeStats | None = None,
    start: int = 0,
) -> MagnitudeStats:
    """Power, magnitude moments, contrast, flatness and rolloff bin of each frame of ``X``.

    Args:
        X: [shape=(T, F)] complex64 STFT, frame-major, F = 1 + n_fft // 2: a whole track, or a
            block of its frames (every statistic is per frame).
        sr: [Hz] sample rate.
        config: feature settings (n_fft, contrast_fmin, contrast_quantile, rolloff_percent).
        P: [shape=(T, F)] float32 C-contiguous array that receives the power ``|X|^2``.
        out: statistics of the whole track, whose rows ``start .. start + T`` receive those of
            ``X``; new arrays of T rows when ``None``.
        start: [frames] index of ``X``'s first frame in ``out``.

    Returns:
        ``out`` (or the new statistics).

    Raises:
        ParameterError: contrast bands above Nyquist (``config.contrast_fmin`` too high).
    """
    T, F = X.shape
    bands, freq = _frame_constants(sr, config.n_fft, config.contrast_fmin, config.contrast_quantile)
    assert P.shape == (T, F) and P.dtype == np.float32 and P.flags.c_contiguous, P.shape
    if out is None:
        out, start = empty_stats(T), 0
    assert start + T <= len(out.flatness), (start, T, len(out.flatness))
    X_np = np.ascontiguousarray(torch.view_as_real(X).numpy())  # (T, F, 2): re, im
    rows = [a[start : start + T] for a in out]
    _frame_loop(X_np, bands, freq, np.float32(config.rolloff_percent), P, *rows)
    return out


@functools.lru_cache(maxsize=8)
def _frame_constants(
    sr: int, n_fft: int, fmin: float, quantile: float
) -> tuple[np.ndarray, np.ndarray]:
    """Contrast bands as an int64 [shape=(7, 3)] array and [Hz] float32 bin frequencies."""
    bands = np.array(_contrast_bands(sr, n_fft, fmin, quantile), dtype=np.int64)
    return bands, fft_frequencies(sr=sr, n_fft=n_fft).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _contrast_bands(
    sr: int, n_fft: int, fmin: float, quantile: float
) -> tuple[tuple[int, int, int], ...]:
    """(first bin, stop bin, bins averaged) per band, as librosa.feature.spectral_contrast."""
    freq = fft_frequencies(sr=sr, n_fft=n_fft)
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

    Seeded with the bounds from :func:`_group_cuts`, then one insertion pass for both sides
    (with k = 1 the bounds are the band's maximum and minimum: nothing to insert).
    """
    k = top.shape[0]
    top_cut, bottom_cut = _group_cuts(bits, first, stop, k)
    top[:] = top_cut
    bottom[:] = bottom_cut
    if k == 1:
        return
    for i in range(first, stop):
        x = bits[i]
        if x > top_cut:
            top_cut = _insert(top, x, 1)
        elif x < bottom_cut:
            bottom_cut = _insert(bottom, x, -1)


@numba.njit(cache=True, nogil=True, inline="always")
def _span_max_min(bits, lo, hi):
    """Max and min of ``bits[lo:hi]``."""
    high = low = bits[lo]
    for i in range(lo + 1, hi):
        high = max(high, bits[i])
        low = min(low, bits[i])
    return high, low


@numba.njit(cache=True, nogil=True, inline="always")
def _insert(buffer, x, sign):
    """Put ``x`` into ``buffer``, sorted by ``sign * value`` descending, dropping its last entry.

    Returns:
        The new last entry (the cut a value must pass to enter).
    """
    j = buffer.shape[0] - 1
    while j > 0 and sign * buffer[j - 1] < sign * x:  # shift the entries x passes down
        buffer[j] = buffer[j - 1]
        j -= 1
    buffer[j] = x
    return buffer[buffer.shape[0] - 1]


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

    The sum of logs is the log of the product of all bins. Bin ``i`` goes into running product
    ``i % 8`` (8 independent multiplication chains rather than one long one); each product is
    brought back to [0.5, 1) after every 16 factors (``frexp``: mantissa and a power of 2 kept
    apart), so none underflows or overflows while ``p < 1e19``.
    """
    F = row.shape[0]
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = 1.0
    s0 = s1 = s2 = s3 = 0.0
    exponent = 0
    span = _LOG_LANES * _LOG_GROUP
    whole = F - F % span
    for start in range(0, whole, span):
        for i in range(start, start + span, _LOG_LANES):
            p0, p1, p2, p3 = (
                _floored(row, i),
                _floored(row, i + 1),
                _floored(row, i + 2),
                _floored(row, i + 3),
            )
            p4, p5, p6, p7 = (
                _floored(row, i + 4),
                _floored(row, i + 5),
                _floored(row, i + 6),
                _floored(row, i + 7),
            )
            m0, m1, m2, m3, m4, m5, m6, m7 = (
                m0 * p0,
                m1 * p1,
                m2 * p2,
                m3 * p3,
                m4 * p4,
                m5 * p5,
                m6 * p6,
                m7 * p7,
            )
            s0, s1, s2, s3 = s0 + (p0 + p4), s1 + (p1 + p5), s2 + (p2 + p6), s3 + (p3 + p7)
        m0, e0 = math.frexp(m0)
        m1, e1 = math.frexp(m1)
        m2, e2 = math.frexp(m2)
        m3, e3 = math.frexp(m3)
        m4, e4 = math.frexp(m4)
        m5, e5 = math.frexp(m5)
        m6, e6 = math.frexp(m6)
        m7, e7 = math.frexp(m7)
        exponent += e0 + e1 + e2 + e3 + e4 + e5 + e6 + e7
    mantissa = ((m0 * m1) * (m2 * m3)) * ((m4 * m5) * (m6 * m7))  # >= 2^-8: no underflow
    total = (s0 + s1) + (s2 + s3)
    for start in range(whole, F, _LOG_GROUP):  # the bins after the last whole span, as above
        for i in range(start, min(start + _LOG_GROUP, F)):
            p = _floored(row, i)
            mantissa *= p
            total += p
        mantissa, e = math.frexp(mantissa)
        exponent += e
    log_sum = np.log(mantissa) + exponent * _LN2
    return np.exp(log_sum / F) / (total / F)


@numba.njit(cache=True, nogil=True, inline="always")
def _floored(row, i):
    """``max(row[i], amin)`` in float64."""
    return max(np.float64(row[i]), _FLATNESS_AMIN)


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
