"""Beat tracking by dynamic programming in plain numpy: the front end and tracker of beats.py.

The stages of Ellis (2007), "Beat Tracking by Dynamic Programming", J. New Music Research 36(1)
(https://www.ee.columbia.edu/~dpwe/pubs/Ellis07-beattrack.pdf), with the conventions librosa
0.11 uses for them, so that grids tracked before and after librosa was dropped agree:

1. the spectral front end (:mod:`editorbot.audio.spectral`): ``mel_power`` (centred STFT
   frames, zero padding, periodic Hann, power, Slaney mel filterbank), ``power_to_db`` relative
   to the loudest bin floored 80 dB below it, ``onset_strength`` (spectral flux at lag 1,
   half-wave rectified, mean over bands); :mod:`editorbot.audio.beats` chains them.
3. :func:`tempo` — the onset envelope's autocorrelation in 8 s Hann windows, each normalised
   to 1 at lag 0, averaged over the track, weighted by a tempo prior (log-normal around
   120 BPM, one octave wide, or flat over a range) and maximised.
4. :func:`track` — the DP: local score = onset envelope / its std, smoothed by a Gaussian of
   1/32 beat; each frame's best predecessor 0.5..2 periods back, penalised by
   ``tightness * log(interval / period) ** 2``; backtrack from the last strong local maximum
   of the cumulative score; drop leading and trailing beats weaker than half the RMS of the
   (smoothed) beat scores.

Nothing here imports librosa, scipy or numba.

Shape:
    y: [shape=(L,)] mono signal.
    S: [shape=(n_mels, T)] mel power spectrogram; onset envelopes [shape=(T,)].
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from editorbot.errors import ParameterError

_AC_SIZE_SEC = 8.0
"""[s] autocorrelation window of the tempo estimate."""
_TEMPO_MAX_BPM = 320.0
"""[beats/min] no tempo at or above this is considered, whatever the prior."""
_ONSET_GAIN = 1e6
"""[1] the autocorrelation is scored as log(1 + 1e6 * r): a soft log that stays finite at 0."""
_WEAK_FRAME = 1e-6
"""[1] autocorrelation frames with less energy than this fraction of the loudest one are
normalised one by one (a 1/energy weight above 1e6 x would swamp the batched FFT's roundoff)."""
_LAG_CHUNK = 64
"""[lags] autocorrelation lags computed per batched FFT."""
_SMOOTH_BEATS = 32.0
"""[1/beat] the local score's Gaussian has a standard deviation of 1/32 beat."""
_FIRST_BEAT = 0.01
"""[1] the DP's first beat needs a local score of 1 % of the maximum."""


def frame_rms(y: np.ndarray, *, frame_length: int, hop_length: int) -> np.ndarray:
    """RMS of centred frames (``frame_length // 2`` zeros padded at both ends).

    Returns:
        [shape=(1 + L // hop_length,)] float32 RMS; exactly 0 over digital silence.
    """
    padded = np.pad(y.astype(np.float32, copy=False), frame_length // 2)
    frames = sliding_window_view(padded, frame_length)[::hop_length]
    return np.sqrt(np.einsum("tj,tj->t", frames, frames) / np.float32(frame_length))


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Linear (not circular) autocorrelation at lags 0..T-1 by FFT. [shape=(T,)] -> (T,)."""
    (T,) = x.shape
    n = _fft_size(2 * T - 1)
    return np.fft.irfft(np.abs(np.fft.rfft(x, n=n)) ** 2, n=n)[:T]


def tempo(
    onset: np.ndarray,
    *,
    sr: int,
    hop_length: int,
    bpm_range: tuple[float, float] | None = None,
    start_bpm: float = 120.0,
    std_octaves: float = 1.0,
) -> float:
    """The global tempo: the lag that maximises the mean local autocorrelation times a prior.

    The envelope is cut into 8 s Hann-windowed frames, one per envelope frame (ends padded by
    linear ramps to 0); each frame's autocorrelation is divided by its value at lag 0; the mean
    over frames ``r(k)`` is scored as ``log(1 + 1e6 r(k)) + log prior(60 fps / k)`` over the lags
    ``k`` of tempi below 320 BPM.

    Args:
        onset: [shape=(T,)] onset envelope.
        sr: [Hz] signal rate; with ``hop_length`` it sets the envelope rate.
        hop_length: [samples] envelope hop.
        bpm_range: [beats/min] a flat prior over this closed range; None for the log-normal one.
        start_bpm: [beats/min] centre of the log-normal prior.
        std_octaves: [octaves] its standard deviation.

    Returns:
        [beats/min] the tempo of the best lag (not interpolated between lags).
    """
    frames_per_sec = sr / hop_length
    win = int(_AC_SIZE_SEC * sr) // hop_length  # [frames] the window, as whole samples / hop
    lags = np.arange(1, win)
    bpms = 60.0 * sr / (hop_length * lags.astype(np.float64))  # [s/min] * [frames/s] / [frames]
    if bpm_range is None:
        log_prior = -0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / std_octaves) ** 2
    else:
        lo, hi = bpm_range
        inside = (bpms >= lo) & (bpms <= hi)
        log_prior = np.where(inside, -np.log(hi - lo), -np.inf)
    keep = (bpms < _TEMPO_MAX_BPM) & np.isfinite(log_prior)
    if not keep.any():
        raise ParameterError(
            f"tempo: no lag of a {win}-frame window at {frames_per_sec:.2f} frames/s has a tempo "
            f"in {bpm_range} below {_TEMPO_MAX_BPM:.0f} BPM; widen the range"
        )
    r = mean_tempogram(onset, win=win, lags=lags[keep])
    score = np.log1p(_ONSET_GAIN * np.maximum(r, 0.0)) + log_prior[keep]
    return float(bpms[keep][int(np.argmax(score))])


def mean_tempogram(onset: np.ndarray, *, win: int, lags: np.ndarray) -> np.ndarray:
    """Mean over frames of the lag-0-normalised autocorrelation of Hann-windowed frames.

    Frame ``t`` is ``x[t : t + win] * w`` of the envelope ``x`` padded by ``win // 2`` ramps to
    0 at each end, ``t = 0..T-1``. Per lag ``k``, with ``c_k[j] = w[j] w[j + k]``,
    ``z_k[s] = x[s] x[s + k]`` and ``u[t] = 1 / energy_t``, the sum over frames is
    ``sum_t u[t] sum_j c_k[j] z_k[t + j] = sum_s z_k[s] (u * c_k)[s]``: one FFT convolution per
    lag on the whole track, instead of one FFT per frame. Frames whose energy is a tiny fraction
    of the loudest (:data:`_WEAK_FRAME`) get their own FFT (their huge weight would amplify the
    batched FFT's roundoff), and all-zero frames count as 0.

    Args:
        onset: [shape=(T,)] envelope.
        win: [frames] window length.
        lags: [frames] the lags wanted, int, shape (K,), each in 1..win-1.

    Returns:
        [1] mean normalised autocorrelation at ``lags``, shape (K,).
    """
    (T,) = onset.shape
    x = np.pad(onset.astype(np.float64), win // 2, mode="linear_ramp", end_values=0.0)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    energy = np.correlate(x * x, w * w, mode="valid")[:T]  # exact 0 on all-zero frames
    weak = (energy > 0) & (energy < _WEAK_FRAME * float(energy.max(initial=0.0)))
    u = np.where((energy > 0) & ~weak, 1.0 / np.where(energy > 0, energy, 1.0), 0.0)

    n = _fft_size(T + win - 1)  # the full convolution of u (T) and c_k (< win)
    u_hat = np.fft.rfft(u, n=n)
    x_ext = np.concatenate([x, np.zeros(n + win - x.shape[0])])
    total = np.empty(len(lags))
    for start in range(0, len(lags), _LAG_CHUNK):
        chunk = lags[start : start + _LAG_CHUNK]
        c = np.zeros((len(chunk), win))
        for row, k in enumerate(chunk):
            c[row, : win - k] = w[: win - k] * w[k:]
        g = np.fft.irfft(np.fft.rfft(c, n=n, axis=1) * u_hat[None, :], n=n, axis=1)
        z = x_ext[None, :n] * x_ext[chunk[:, None] + np.arange(n)[None, :]]
        total[start : start + len(chunk)] = np.einsum("ks,ks->k", z, g)
    if weak.any():
        frames = sliding_window_view(x, win)[:T][weak] * w
        m = _fft_size(2 * win - 1)
        ac = np.fft.irfft(np.abs(np.fft.rfft(frames, n=m, axis=1)) ** 2, n=m, axis=1)[:, :win]
        total += (ac[:, lags] / np.abs(ac).max(axis=1, keepdims=True)).sum(axis=0)
    return total / T


def _fft_size(n: int) -> int:
    """The smallest 2^a 3^b >= n (fast sizes for numpy's FFT)."""
    best = 1 << max(0, (n - 1).bit_length())
    size = 3
    while size < best:
        p2 = size * (1 << max(0, (-(-n // size) - 1).bit_length()))
        best = min(best, p2)
        size *= 3
    return best


def track(
    onset: np.ndarray, *, sr: int, hop_length: int, bpm: float, tightness: float
) -> np.ndarray:
    """Beat frames by dynamic programming (Ellis 2007) at a fixed tempo.

    Args:
        onset: [shape=(T,)] onset envelope.
        sr: [Hz] signal rate.
        hop_length: [samples] envelope hop.
        bpm: [beats/min] the tempo to follow; the period is rounded to whole frames.
        tightness: [1] weight of the squared log-ratio of each interval to the period.

    Returns:
        [frames] increasing int64 beat frames, shape (n,); empty if no onset stands out.
    """
    if bpm <= 0 or tightness <= 0:
        raise ParameterError(f"track: need bpm > 0 and tightness > 0, got {bpm}, {tightness}")
    period = int(np.round(sr / hop_length * 60.0 / bpm))  # [frames/s] * [s/min] / [beats/min]
    if not onset.any() or period < 1:
        return np.zeros(0, dtype=np.int64)
    local = _local_score(onset, period=period)
    cumulative, backlink = _dp(local, period=period, tightness=tightness)
    beats = []
    frame = _last_beat(cumulative)
    while frame >= 0:
        beats.append(frame)
        frame = int(backlink[frame])
    return _trim(np.array(beats[::-1], dtype=np.int64), local)


def _local_score(onset: np.ndarray, *, period: int) -> np.ndarray:
    """The onset envelope over its std (ddof 1), smoothed by a Gaussian of 1/32 beat. (T,)."""
    x = onset.astype(np.float64)
    x = x / (x.std(ddof=1) + np.finfo(np.float64).tiny)
    offsets = np.arange(-period, period + 1) * _SMOOTH_BEATS / period  # [1/32 beats]
    return np.convolve(x, np.exp(-0.5 * offsets**2), mode="same")


def _dp(local: np.ndarray, *, period: int, tightness: float) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative score and best predecessor of every frame.

    ``cumulative[i] = local[i] + max_d (cumulative[i - d] - tightness log(d / period)^2)`` over
    intervals ``d = round(period / 2) .. 2 period`` (the smallest ``d`` wins ties); no
    predecessor (start of the track) adds nothing. Frames before the first one whose local score
    reaches 1 % of the maximum start a chain (backlink -1). As every predecessor lies at least
    ``round(period / 2)`` frames back, that many frames are scored at once from settled ones.

    Returns:
        cumulative: (T,) float64 score; backlink: (T,) int64 previous beat frame or -1.
    """
    (T,) = local.shape
    half = int(np.round(period / 2))  # numpy rounds half to even, as librosa's numba code does
    intervals = np.arange(half, 2 * period + 1)  # [frames]
    penalty = tightness * (np.log(intervals) - np.log(period)) ** 2
    offsets = np.arange(half)[:, None] - intervals[None, :]  # (half, D): frame - interval
    cumulative = np.empty(T)
    backlink = np.full(T, -1, dtype=np.int64)
    for start in range(0, T, half):
        n = min(half, T - start)
        prev = start + offsets[:n]
        cand = np.where(prev >= 0, cumulative[np.maximum(prev, 0)] - penalty, -np.inf)
        best = cand.argmax(axis=1)
        rows = np.arange(n)
        found = prev[rows, best] >= 0
        cumulative[start : start + n] = local[start : start + n] + np.where(
            found, cand[rows, best], 0.0
        )
        backlink[start : start + n] = np.where(found, prev[rows, best], -1)
    strong = local >= _FIRST_BEAT * local.max()
    first = int(np.argmax(strong)) if strong.any() else T
    backlink[:first] = -1
    return cumulative, backlink


def _last_beat(cumulative: np.ndarray) -> int:
    """The last local maximum of the cumulative score that reaches half their median. Frame 0 is
    never a local maximum, the last frame is one if it rises; with none, the last frame."""
    (T,) = cumulative.shape
    is_max = np.zeros(T, dtype=bool)
    is_max[1:-1] = (cumulative[1:-1] > cumulative[:-2]) & (cumulative[1:-1] >= cumulative[2:])
    if T > 1:
        is_max[-1] = cumulative[-1] > cumulative[-2]
    if not is_max.any():
        return T - 1
    threshold = 0.5 * float(np.median(cumulative[is_max]))
    good = np.flatnonzero(is_max & (cumulative >= threshold))
    return int(good[-1]) if len(good) else T - 1


def _trim(beats: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Drop the beats before the first and after the last frame whose local score exceeds half
    the RMS of the beats' local scores smoothed by a 5-point Hann ``[.5, 1, .5]`` (the RMS also
    counts the smoothed sequence's two trailing values, as librosa does)."""
    if len(beats) == 0:
        return beats
    smooth = np.convolve(local[beats], [0.0, 0.5, 1.0, 0.5, 0.0])[2 : len(beats) + 4]
    threshold = 0.5 * float(np.sqrt(np.mean(smooth**2)))
    above = np.flatnonzero(local > threshold)
    if len(above) == 0:
        return beats[:0]
    return beats[(beats >= above[0]) & (beats <= above[-1])]
