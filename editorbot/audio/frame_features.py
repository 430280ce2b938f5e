"""Frame features of a track from one STFT, each as librosa defines it.

The DSP half of :mod:`editorbot.audio.features`: the centred STFT of the mix (and of its
stems), then the 52 frame features (onset strength, RMS, spectral centroid, zero-crossing
rate, rolloff, bandwidth, flatness, contrast, MFCC, ΔMFCC, chroma) as vectorised operations,
with librosa's filterbanks (:mod:`editorbot.audio.filterbanks`) built once and cached;
contrast, flatness and rolloff come from one compiled per-frame loop
(:mod:`editorbot.audio.magnitude_stats`). Each function names the librosa function whose
definition it reproduces (https://librosa.org/doc/0.11.0/feature.html).

The STFT, mel projection, power-to-dB and onset strength are the spectral front end's
(:mod:`editorbot.audio.spectral`). The STFT comes a block of frames at a time and each block
is reduced to its per-frame features (power, statistics, mel and chroma) before the next one is
computed: the working arrays (windowed frames, spectrum, power: 2.5 MB in all) are reused from
block to block and stay in cache, instead of whole-track arrays (30-60 MB each for 3 minutes)
that the allocator maps afresh, page by page, on every call.

Shape:
    signals: [shape=(B, L)]: row 0 the mix, rows 1-4 the stems (optional).
    Frame features: [shape=(T, F)] with T = 1 + L // hop_length.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import torch

from editorbot.audio import spectral
from editorbot.audio.feature_config import FeatureConfig
from editorbot.audio.filterbanks import chroma_filterbank, dct_matrix, fft_frequencies
from editorbot.audio.magnitude_stats import MagnitudeStats, empty_stats, magnitude_stats

N_FRAME_FEATURES = 52


@functools.lru_cache(maxsize=8)
def _bases(sr: int, config: FeatureConfig) -> dict[str, torch.Tensor]:
    """Per-(sr, config) constant matrices, built once from librosa's definitions."""
    freq = fft_frequencies(sr=sr, n_fft=config.n_fft)
    chroma = chroma_filterbank(sr=sr, n_fft=config.n_fft, tuning=config.tuning)
    as_t = functools.partial(torch.tensor, dtype=torch.float32)
    return {
        "freq": as_t(freq),
        "moments": as_t(np.stack([np.ones_like(freq), freq, freq**2], axis=1)),  # (F, 3)
        "chroma": as_t(chroma.T.copy()),  # (F, 12)
        "dct": as_t(dct_matrix(config.n_mfcc, config.n_mels).T.copy()),  # (n_mels, n_mfcc)
    }


def frame_features(
    signals: np.ndarray, *, sr: int, config: FeatureConfig
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Frame features of the mix (row 0) and, if present, stem quantities (rows 1-4).

    Returns:
        [shape=(T, 52)] mix features in :data:`FRAME_FEATURE_NAMES` order, and
        [shape=(T, 4 * 3)] per stem (rms, centroid, mean square) or ``None``.
    """
    B, L = signals.shape
    bases = _bases(sr, config)
    stats, mel, chroma = _mix_spectra(signals[0], bases, sr=sr, config=config)
    rms, zcr = rms_and_zcr(signals, n_fft=config.n_fft, hop_length=config.hop_length)
    moments = torch.from_numpy(stats.moments)[None]
    if B > 1:  # stems: only their magnitude moments (centroid) are needed
        stem_moments = [_magnitude_moments(signals[b], bases, config=config) for b in range(1, B)]
        moments = torch.cat([moments, torch.stack(stem_moments)])
    centroid, bandwidth = _centroid_bandwidth(moments)
    mix = _mix_features(stats, mel, chroma, bases, config=config)
    basic = [mix["onset"], rms[0], centroid[0], zcr[0]]
    extended = [mix["rolloff"], bandwidth[0], mix["flatness"]]
    tonal = [mix["contrast"], mix["mfcc"], mix["mfcc_delta"], mix["chroma"]]
    frames = torch.cat([*basic, *extended, *tonal], dim=1)
    assert frames.shape == (rms.shape[1], N_FRAME_FEATURES), frames.shape
    if B == 1:
        return frames, None
    stems = torch.stack([rms[1:], centroid[1:], rms[1:].square()], dim=-1)  # (4, T, 1, 3)
    return frames, stems.squeeze(2).transpose(0, 1).reshape(frames.shape[0], -1)


def _mix_spectra(
    y: np.ndarray, bases: dict[str, torch.Tensor], *, sr: int, config: FeatureConfig
) -> tuple[MagnitudeStats, torch.Tensor, torch.Tensor]:
    """Per-frame statistics, mel power and raw chroma of ``y``, a block of frames at a time.

    Returns:
        The statistics, [shape=(T, n_mels)] mel power and [shape=(T, 12)] chroma energy.
    """
    T = spectral.n_frames(len(y), n_fft=config.n_fft, hop_length=config.hop_length)
    blocks = spectral.mel_blocks(sr, config.n_fft, config.n_mels)
    stats = empty_stats(T)
    mel = torch.empty(T, config.n_mels)
    chroma = torch.empty(T, bases["chroma"].shape[1])
    P_block = np.empty((spectral.block_size(T), 1 + config.n_fft // 2), np.float32)  # reused
    for start, X in spectral.stft_blocks(y, n_fft=config.n_fft, hop_length=config.hop_length):
        stop = start + X.shape[0]
        P_np = P_block[: X.shape[0]]
        magnitude_stats(X, sr=sr, config=config, P=P_np, out=stats, start=start)
        P = torch.from_numpy(P_np)
        spectral.project_mel(P, blocks, out=mel[start:stop])
        torch.mm(P, bases["chroma"], out=chroma[start:stop])
    return stats, mel, chroma


def _magnitude_moments(
    y: np.ndarray, bases: dict[str, torch.Tensor], *, config: FeatureConfig
) -> torch.Tensor:
    """[shape=(T, 3)] sums of ``|X|`` weighted by 1, f and f^2 per frame of ``y``'s STFT."""
    stft = spectral.stft_blocks(y, n_fft=config.n_fft, hop_length=config.hop_length)
    return torch.cat([X.abs() @ bases["moments"] for _, X in stft])


def rms_and_zcr(
    signals: np.ndarray, *, n_fft: int, hop_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """librosa.feature.rms(y=...) and zero_crossing_rate(y), exactly, from frame sums.

    Returns:
        [shape=(B, T, 1)] each.
    """
    B, L = signals.shape
    T = 1 + L // hop_length
    if n_fft % hop_length == 0:  # frames are whole hop blocks: one compiled pass over y
        rms, zcr = np.empty((B, T), np.float32), np.empty((B, T), np.float32)
        for b in range(B):
            _rms_zcr_blocks(signals[b], n_fft, hop_length, rms[b], zcr[b])
        return torch.from_numpy(rms)[..., None], torch.from_numpy(zcr)[..., None]
    pad = [(0, 0), (n_fft // 2, n_fft // 2)]
    y_pad = np.pad(signals, pad)  # rms pads with zeros
    rms = np.sqrt(
        _frame_sums(y_pad * y_pad, n_fft=n_fft, hop_length=hop_length, n_frames=T) / n_fft
    )
    # zero_crossing_rate pads by repeating the edge samples; |x| <= 1e-10 counts as zero (+);
    # a frame counts the crossings between its own consecutive samples (n_fft - 1 pairs).
    negative = np.pad(signals, pad, mode="edge") < -1e-10
    crossing = np.zeros((B, negative.shape[1]), dtype=np.float32)
    np.not_equal(negative[:, 1:], negative[:, :-1], out=crossing[:, :-1])
    last_pair = np.arange(T) * hop_length + n_fft - 1  # pair index just past each frame
    frame_crossings = _frame_sums(crossing, n_fft=n_fft, hop_length=hop_length, n_frames=T)
    zcr = (frame_crossings - crossing[:, last_pair]) / n_fft
    return (torch.from_numpy(rms).float()[..., None], torch.from_numpy(zcr).float()[..., None])


def _frame_sums(x: np.ndarray, *, n_fft: int, hop_length: int, n_frames: int) -> np.ndarray:
    """Sum of ``x[:, t * hop_length : t * hop_length + n_fft]`` for each frame ``t``.

    When hops tile the frame (``n_fft % hop_length == 0``), a frame is a few whole hop blocks,
    so one reshape-sum does it; otherwise a float64 cumulative sum.
    """
    B, N = x.shape
    starts = np.arange(n_frames) * hop_length
    if n_fft % hop_length:
        summed = np.zeros((B, N + 1))
        np.cumsum(x, axis=1, out=summed[:, 1:])
        return np.maximum(summed[:, starts + n_fft] - summed[:, starts], 0.0)
    per_frame = n_fft // hop_length
    n_blocks = n_frames - 1 + per_frame
    x = x[:, : n_blocks * hop_length]
    x = np.pad(x, [(0, 0), (0, n_blocks * hop_length - x.shape[1])])
    blocks = x.reshape(B, n_blocks, hop_length).sum(axis=2, dtype=np.float64)
    return sum(blocks[:, k : k + n_frames] for k in range(per_frame))


@numba.njit(cache=True, nogil=True)
def _rms_zcr_blocks(y, n_fft, hop_length, rms, zcr):
    """Fill ``rms`` and ``zcr`` [T] of ``y`` [L] as :func:`rms_and_zcr`, from hop-block sums.

    The centred signal is virtual: zeros outside ``y`` for RMS, its edge samples for the
    zero-crossing rate. Frame ``t`` is hop blocks ``t .. t + n_fft // hop_length - 1``, less the
    one pair that crosses its end (a frame has ``n_fft - 1`` pairs).
    """
    L = y.shape[0]
    pad, n = n_fft // 2, L + 2 * (n_fft // 2)  # n: padded length
    per_frame = n_fft // hop_length
    T = rms.shape[0]
    squares = np.zeros(T - 1 + per_frame)
    crossings = np.zeros(T - 1 + per_frame)
    for block in range(T - 1 + per_frame):
        lo, hi = block * hop_length - pad, (block + 1) * hop_length - pad  # in y's indices
        total, count = 0.0, 0
        if lo >= 0 and hi < L:  # inside y: no padding to look up
            for i in range(lo, hi):
                total += np.float64(y[i]) * np.float64(y[i])
                count += (y[i] < -1e-10) != (y[i + 1] < -1e-10)
        else:
            for i in range(lo, hi):
                if 0 <= i < L:
                    total += np.float64(y[i]) * np.float64(y[i])
                count += _crosses(y, i, n - pad)
        squares[block], crossings[block] = total, count
    for t in range(T):
        end = t + per_frame
        rms[t] = np.sqrt(max(np.sum(squares[t:end]), 0.0) / n_fft)
        last_pair = t * hop_length + n_fft - 1 - pad
        zcr[t] = (np.sum(crossings[t:end]) - _crosses(y, last_pair, n - pad)) / n_fft


@numba.njit(cache=True, nogil=True, inline="always")
def _crosses(y, i, stop):
    """1 if edge-padded ``y`` changes sign between ``i`` and ``i + 1`` (< ``stop``), else 0.

    ``|x| <= 1e-10`` counts as zero, and zero as positive (librosa.zero_crossings' defaults).
    """
    if i + 1 >= stop:
        return 0
    L = y.shape[0]
    a = y[min(max(i, 0), L - 1)] < -1e-10
    b = y[min(max(i + 1, 0), L - 1)] < -1e-10
    return 1 if a != b else 0


def _centroid_bandwidth(moments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectral centroid and (p=2) bandwidth from magnitude moments [shape=(B, T, 3)]."""
    total = moments[..., :1]
    safe = torch.where(total > 0, total, torch.ones_like(total))
    centroid = torch.where(total > 0, moments[..., 1:2] / safe, torch.zeros_like(total))
    spread = (moments[..., 2:3] / safe - centroid.square()).clamp_min(0.0)
    return centroid, torch.where(total > 0, spread.sqrt(), torch.zeros_like(total))


def _mix_features(
    stats: MagnitudeStats,
    mel: torch.Tensor,
    chroma: torch.Tensor,
    bases: dict[str, torch.Tensor],
    *,
    config: FeatureConfig,
) -> dict[str, torch.Tensor]:
    """The mix's spectral features from its mel power, chroma energy and frame statistics."""
    mel_db = spectral.power_to_db(mel, top_db=config.top_db)
    mfcc = mel_db @ bases["dct"]
    peak = chroma.amax(dim=1, keepdim=True)
    return {
        # librosa's centred onset strength: delayed by 1 + n_fft // (2 * hop_length) frames
        "onset": spectral.onset_strength(
            mel_db.T, delay=1 + config.n_fft // (2 * config.hop_length)
        )[:, None],
        "rolloff": bases["freq"][torch.from_numpy(stats.rolloff_bin)][:, None],
        "flatness": torch.from_numpy(stats.flatness)[:, None],
        "contrast": spectral.power_to_db(torch.from_numpy(stats.peak), top_db=config.top_db)
        - spectral.power_to_db(torch.from_numpy(stats.valley), top_db=config.top_db),
        "mfcc": mfcc,
        "mfcc_delta": _savgol_delta(mfcc, width=config.delta_width),
        "chroma": torch.where(peak > 0, chroma / peak.clamp_min(1e-30), torch.zeros_like(chroma)),
    }


def _savgol_delta(x: torch.Tensor, *, width: int) -> torch.Tensor:
    """librosa.feature.delta(x, width, order=1, axis=0): a Savitzky-Golay slope [shape=(T, D)].

    For a first-order fit the slope over a window is ``sum_k k (x[t+k] - x[t-k]) / (2 sum k^2)``;
    scipy's ``mode='interp'`` gives the first and last ``width // 2`` frames the slope of the
    first and last full window (Savitzky & Golay 1964, https://doi.org/10.1021/ac60214a047).
    """
    T, D = x.shape
    half = width // 2
    if half * 2 + 1 > T:
        return torch.zeros_like(x)
    norm = 2.0 * sum(k * k for k in range(1, half + 1))
    inner = sum(
        k * (x[half + k : T - half + k] - x[half - k : T - half - k]) for k in range(1, half + 1)
    )
    inner = torch.as_tensor(inner) / norm
    return torch.cat([inner[:1].expand(half, D), inner, inner[-1:].expand(half, D)])
