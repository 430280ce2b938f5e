"""Per-frame statistics of a magnitude spectrogram that are not matrix products, in one pass.

Spectral contrast (mean of each octave band's largest and smallest bins), spectral flatness
(geometric over arithmetic mean of the power) and spectral rolloff (first bin where the
cumulative magnitude reaches a share of the total) each need every bin of every frame and a
non-linear step (a selection, a logarithm, a threshold). Done as tensor operations they cost
several full passes over the spectrum (sorting or k rounds of max/min per band, a log of every
bin, a full cumulative sum); one compiled loop per frame reads the row once while it is in
cache:

- contrast: a sorted buffer of the band's ``k`` largest and ``k`` smallest values (k <= 9),
  exactly the means of the ends of ``np.sort`` in ``librosa.feature.spectral_contrast``;
- flatness: the sum of logs is taken as the log of products of 16 bins in float64 (one log
  per 16 bins; exact to float64 rounding while ``|X|^2 < 1e19``, i.e. any signal with
  ``|y| < 10^6``), as ``librosa.feature.spectral_flatness`` (power 2, ``amin`` 1e-10);
- rolloff: a float32 running sum stopped at the threshold, as ``librosa.feature.spectral_rolloff``.

Definitions: https://librosa.org/doc/0.11.0/feature.html (contrast after Jiang et al. 2002,
https://doi.org/10.1109/ICME.2002.1035731). The loop is compiled with numba (librosa's own
JIT dependency), cached on disk after the first call.

Shape:
    S: [shape=(T, F)] float32 magnitude, frame-major (contiguous rows).
    Outputs: [shape=(T,)] or [shape=(T, n_bands)].
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
# Reassociation lets LLVM vectorise sums and products; no flag that assumes finite values, so
# the ±inf sentinels and the comparisons keep their IEEE meaning.
_REASSOCIATE = {"reassoc", "contract", "nsz"}


class MagnitudeStats(NamedTuple):
    """Per-frame statistics from :func:`magnitude_stats`."""

    peak: torch.Tensor
    """[shape=(T, 7)] mean of each contrast band's largest bins (magnitude)."""
    valley: torch.Tensor
    """[shape=(T, 7)] mean of each contrast band's smallest bins (magnitude)."""
    flatness: torch.Tensor
    """[shape=(T,)] spectral flatness of the power, in [0, 1]."""
    rolloff_bin: torch.Tensor
    """[shape=(T,)] int64 first bin whose cumulative magnitude reaches the rolloff share."""


def magnitude_stats(S: torch.Tensor, *, sr: int, config: FeatureConfig) -> MagnitudeStats:
    """Contrast peaks and valleys, flatness and rolloff bin of each frame of ``S``.

    Args:
        S: [shape=(T, F)] float32 magnitude spectrogram, F = 1 + n_fft // 2.
        sr: [Hz] sample rate.
        config: feature settings (n_fft, contrast_fmin, contrast_quantile, rolloff_percent).

    Returns:
        The statistics as tensors (see :class:`MagnitudeStats`).
    """
    T, F = S.shape
    bands = np.array(
        _contrast_bands(sr, config.n_fft, config.contrast_fmin, config.contrast_quantile),
        dtype=np.int64,
    )
    peak, valley = np.empty((T, len(bands)), np.float32), np.empty((T, len(bands)), np.float32)
    flatness, rolloff = np.empty(T, np.float32), np.empty(T, np.int64)
    S_np = np.ascontiguousarray(S.numpy(), dtype=np.float32)
    _frame_loop(S_np, bands, np.float32(config.rolloff_percent), peak, valley, flatness, rolloff)
    return MagnitudeStats(
        torch.from_numpy(peak),
        torch.from_numpy(valley),
        torch.from_numpy(flatness),
        torch.from_numpy(rolloff),
    )


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
def _frame_loop(S, bands, rolloff_percent, peak, valley, flatness, rolloff):
    """Fill ``peak``, ``valley`` [T, n_bands], ``flatness`` and ``rolloff`` [T] from ``S``."""
    T, F = S.shape
    k_max = int(bands[:, 2].max())
    top = np.empty(k_max, np.float32)
    bottom = np.empty(k_max, np.float32)
    for t in range(T):
        row = S[t]
        for b in range(bands.shape[0]):
            first, stop, k = bands[b, 0], bands[b, 1], bands[b, 2]
            peak[t, b], valley[t, b] = _band_extremes(row, first, stop, k, top, bottom)
        flatness[t] = _flatness(row)
        rolloff[t] = _rolloff_bin(row, rolloff_percent)


@numba.njit(cache=True, nogil=True, inline="always")
def _band_extremes(row, first, stop, k, top, bottom):
    """Means of the ``k`` largest and ``k`` smallest of ``row[first:stop]`` (insertion buffers)."""
    if k == 1:  # the mean of the one largest is the max
        return _span_max_min(row, first, stop)
    top_cut, bottom_cut = _group_cuts(row, first, stop, k)
    for j in range(k):
        top[j] = top_cut
        bottom[j] = bottom_cut
    top_cut = _insert(row, first, stop, top[:k], top_cut, 1.0)
    bottom_cut = _insert(row, first, stop, bottom[:k], bottom_cut, -1.0)
    high = 0.0
    low = 0.0
    for j in range(k):
        high += top[j]
        low += bottom[j]
    return high / k, low / k


@numba.njit(cache=True, nogil=True, fastmath=True)
def _span_max_min(row, lo, hi):
    """Max and min of ``row[lo:hi]`` (finite values: fastmath lets LLVM vectorise them)."""
    high = low = row[lo]
    for i in range(lo + 1, hi):
        high = max(high, row[i])
        low = min(low, row[i])
    return high, low


@numba.njit(cache=True, nogil=True, inline="always")
def _insert(row, lo, hi, buffer, cut, sign):
    """Insert ``row[lo:hi]`` into the sorted ``buffer`` of the k most extreme values so far.

    ``sign`` 1 keeps the largest (buffer descending), -1 the smallest; returns the new cut (the
    buffer's last, least extreme value).
    """
    k = buffer.shape[0]
    for i in range(lo, hi):
        x = row[i]
        if sign * x > sign * cut:  # shift less extreme values down, put x in its place
            j = k - 1
            while j > 0 and sign * buffer[j - 1] < sign * x:
                buffer[j] = buffer[j - 1]
                j -= 1
            buffer[j] = x
            cut = buffer[k - 1]
    return cut


@numba.njit(cache=True, nogil=True)
def _group_cuts(row, first, stop, k):
    """Bounds on the k-th largest and k-th smallest of ``row[first:stop]`` (k <= stop - first).

    Split into k groups: their k maxima are k distinct values, so the k-th largest is at least
    the smallest group maximum (and the k-th smallest at most the largest group minimum). Seeded
    with k copies of that bound, the insertion buffer only ever sees the few values beyond it,
    and still ends with exactly the k largest (values equal to the bound add the bound).
    """
    size = (stop - first) // k
    top_cut, bottom_cut = np.inf, -np.inf
    for j in range(k):
        lo = first + j * size
        high, low = _span_max_min(row, lo, stop if j == k - 1 else lo + size)
        top_cut = min(top_cut, high)
        bottom_cut = max(bottom_cut, low)
    return top_cut, bottom_cut


@numba.njit(cache=True, nogil=True, fastmath=True)
def _flatness(row):
    """exp(mean(log(p))) / mean(p) with p = max(row^2, amin), from one log per frame.

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
            p = max(np.float64(row[i]) * np.float64(row[i]), _FLATNESS_AMIN)
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
