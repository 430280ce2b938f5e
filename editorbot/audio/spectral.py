"""The spectral front end: STFT, power spectrogram, mel projection, power-to-dB, onset strength.

Every analysis of audio in editorbot goes through these functions: the beat tracker
(:mod:`editorbot.audio.beat_tracker`), the beat features (:mod:`editorbot.audio.frame_features`),
the raw↔edit alignment (:mod:`editorbot.editing.align`), the supervised model's log-mel input
(:class:`editorbot.models.supervised.LogMel`) and the evaluation's spectral distances
(:mod:`editorbot.evaluation.metrics`). The conventions are librosa 0.11's (centred frames, a
periodic Hann window, Slaney mel filters from :mod:`editorbot.audio.filterbanks`), computed in
PyTorch so the whole-track transforms stay fast without importing librosa; the supervised
model's mel is torchaudio's (HTK scale, unnormalised filters, reflected edges), the one it was
trained on.

The STFT is taken :data:`BLOCK_FRAMES` frames at a time (:func:`stft_blocks`): each frame's FFT
is independent, so the numbers are those of one ``torch.stft`` of the track, but the working
arrays stay in cache instead of whole-track arrays mapped afresh on every call.

Shape:
    y: [shape=(L,)] mono signal. Spectrograms: [shape=(F, T)], frames last (librosa's layout),
    T = 1 + L // hop_length; STFT blocks are frame-major, [shape=(n, 1 + n_fft // 2)].
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from typing import TypeVar, overload

import numpy as np
import torch

from editorbot.audio.filterbanks import mel_filterbank
from editorbot.errors import ParameterError

BLOCK_FRAMES = 128
"""[frames] most STFT frames per block. At n_fft 2048, 128 frames are 1 MB of windowed frames,
1 MB of spectrum and 0.5 MB of power, which stay in cache; smaller blocks pay more per-call
overhead (torch, numba dispatch), larger ones spill. 128-256 measured fastest (within noise)."""
AMIN = 1e-10
"""[power] floor under the power before the log (-100 dB), as librosa.power_to_db."""
_MEL_BLOCK = 16
"""[filters] mel filters per dense block of the block-sparse filterbank."""

_Array = TypeVar("_Array", np.ndarray, torch.Tensor)


def n_frames(
    n_samples: int, *, n_fft: int, hop_length: int, center: bool = True, pad_end: bool = False
) -> int:
    """[frames] number of STFT frames of ``n_samples`` samples (T); see :func:`stft_blocks`.

    Raises:
        ParameterError: not one whole frame (fewer than ``n_fft`` samples without ``center``).
    """
    span = n_samples + (2 * (n_fft // 2) if center else 0) - n_fft  # [samples] frame starts' range
    if span < 0:
        raise ParameterError(f"STFT of {n_samples} samples: shorter than one frame of {n_fft}")
    return 1 + (-(-span // hop_length) if pad_end else span // hop_length)


def block_size(n_frames: int) -> int:
    """[frames] the largest block :func:`stft_blocks` yields for ``n_frames`` frames."""
    n_blocks = -(-n_frames // BLOCK_FRAMES)
    return -(-n_frames // n_blocks)


@functools.lru_cache(maxsize=8)
def hann_window(n_fft: int) -> torch.Tensor:
    """[shape=(n_fft,)] periodic Hann window, as scipy.signal.get_window('hann', n_fft)."""
    return torch.hann_window(n_fft)


def stft_blocks(
    y: np.ndarray, *, n_fft: int, hop_length: int, center: bool = True, pad_end: bool = False
) -> Iterator[tuple[int, torch.Tensor]]:
    """``torch.stft(y, center=True, pad_mode='constant')``, a block of frames at a time.

    The T frames are split into blocks of equal size (to one frame), at most
    :data:`BLOCK_FRAMES` each: no short last block, whose products MKL would take through
    another kernel (a 1- or 2-row matrix product rounds differently from a long one).

    Args:
        y: [shape=(L,)] float32 mono signal.
        n_fft: [samples] frame and FFT length (periodic Hann window).
        hop_length: [samples] frame hop.
        center: frame ``t`` is centred on sample ``t * hop_length`` (``n_fft // 2`` zeros
            before the signal and after it); False: it starts there, and the last frame ends
            within the signal (``scipy.signal.stft`` with ``boundary=None, padded=False``).
        pad_end: zeros after the end up to a whole hop, so the last frame reaches the last
            sample (``scipy.signal.stft``'s ``padded=True``; with ``center`` its defaults).

    Yields:
        The block's first frame and its [shape=(n, 1 + n_fft // 2)] complex64 STFT,
        frame-major, n <= :func:`block_size` (T); the tensor is overwritten by the next block.

    Raises:
        ParameterError: ``y`` holds no whole frame (shorter than ``n_fft`` without ``center``).
    """
    (L,) = y.shape
    T = n_frames(L, n_fft=n_fft, hop_length=hop_length, center=center, pad_end=pad_end)
    pad = n_fft // 2 if center else 0  # [samples] zeros before the signal (torch.stft's centring)
    padded = torch.zeros(max(L + 2 * pad, (T - 1) * hop_length + n_fft))
    padded[pad : pad + L] = torch.from_numpy(np.asarray(y, dtype=np.float32))
    frames = padded.unfold(0, n_fft, hop_length)  # (T, n_fft) view of the padded signal
    assert frames.shape[0] == T, (frames.shape, T)
    window = hann_window(n_fft)
    n_blocks = -(-T // BLOCK_FRAMES)
    windowed = torch.empty(block_size(T), n_fft)
    spectrum = torch.empty(block_size(T), 1 + n_fft // 2, dtype=torch.complex64)
    for b in range(n_blocks):
        start, stop = b * T // n_blocks, (b + 1) * T // n_blocks
        n = stop - start
        torch.mul(frames[start:stop], window, out=windowed[:n])
        torch.fft.rfft(windowed[:n], out=spectrum[:n])
        yield start, spectrum[:n]


def power_spectrogram(
    y: np.ndarray, *, n_fft: int, hop_length: int, center: bool = True, pad_end: bool = False
) -> np.ndarray:
    """``|STFT|^2`` (by default of centred frames: librosa.stft's defaults, squared).

    ``center`` and ``pad_end`` place the frames as in :func:`stft_blocks`.

    Returns:
        [shape=(1 + n_fft // 2, T)] float32.
    """
    T = n_frames(len(y), n_fft=n_fft, hop_length=hop_length, center=center, pad_end=pad_end)
    S = np.empty((1 + n_fft // 2, T), dtype=np.float32)
    blocks = stft_blocks(y, n_fft=n_fft, hop_length=hop_length, center=center, pad_end=pad_end)
    for start, X in blocks:
        S[:, start : start + X.shape[0]] = (X.real.square() + X.imag.square()).T.numpy()
    return S


def magnitude_spectrogram(
    y: np.ndarray, *, n_fft: int, hop_length: int, center: bool = True, pad_end: bool = False
) -> np.ndarray:
    """``|STFT|``, [shape=(1 + n_fft // 2, T)] float32; frames as in :func:`stft_blocks`."""
    T = n_frames(len(y), n_fft=n_fft, hop_length=hop_length, center=center, pad_end=pad_end)
    S = np.empty((1 + n_fft // 2, T), dtype=np.float32)
    blocks = stft_blocks(y, n_fft=n_fft, hop_length=hop_length, center=center, pad_end=pad_end)
    for start, X in blocks:
        S[:, start : start + X.shape[0]] = X.abs().T.numpy()
    return S


def window_sum(n_fft: int) -> float:
    """[samples] the sum of :func:`hann_window` (``n_fft / 2``): dividing an STFT by it
    gives ``scipy.signal.stft``'s scaling (a sine of amplitude A peaks near A / 2)."""
    return float(hann_window(n_fft).sum())


@functools.lru_cache(maxsize=8)
def mel_blocks(sr: int, n_fft: int, n_mels: int) -> tuple[tuple[int, int, torch.Tensor], ...]:
    """The Slaney mel filterbank as blocks (first bin, stop bin, [shape=(bins, <=16)] weights).

    Each mel filter covers a few neighbouring bins, so a block of 16 consecutive filters
    touches only a narrow band of the spectrum; multiplying by the blocks alone does about
    8× fewer multiply-adds than the dense (F, n_mels) matrix, with the same result.
    """
    mel = mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels)  # (n_mels, F)
    blocks = []
    for first in range(0, n_mels, _MEL_BLOCK):
        weights = mel[first : first + _MEL_BLOCK]
        used = np.flatnonzero(weights.any(axis=0))
        lo, hi = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
        blocks.append((lo, hi, torch.tensor(weights[:, lo:hi].T.copy(), dtype=torch.float32)))
    return tuple(blocks)


def project_mel(
    P: torch.Tensor, blocks: tuple[tuple[int, int, torch.Tensor], ...], *, out: torch.Tensor
) -> None:
    """Mel power of frame-major power ``P`` [shape=(n, F)] into ``out`` [shape=(n, n_mels)]."""
    for i, (lo, hi, weights) in enumerate(blocks):
        first = i * _MEL_BLOCK
        torch.mm(P[:, lo:hi], weights, out=out[:, first : first + weights.shape[1]])


def mel_power(y: np.ndarray, *, sr: int, n_fft: int, hop_length: int, n_mels: int) -> np.ndarray:
    """Slaney mel power spectrogram of centred frames (librosa.feature.melspectrogram).

    Args:
        y: [shape=(L,)] mono signal.
        sr: [Hz] its rate.
        n_fft: [samples] frame and FFT length (periodic Hann window).
        hop_length: [samples] frame hop.
        n_mels: [bins] mel bands over 0..sr/2.

    Returns:
        [shape=(n_mels, 1 + L // hop_length)] float32 power (|X|^2 through the filterbank).
    """
    T = n_frames(len(y), n_fft=n_fft, hop_length=hop_length)
    blocks = mel_blocks(sr, n_fft, n_mels)
    mel = torch.empty(T, n_mels)
    for start, X in stft_blocks(y, n_fft=n_fft, hop_length=hop_length):
        P = X.real.square() + X.imag.square()
        project_mel(P, blocks, out=mel[start : start + X.shape[0]])
    return mel.T.contiguous().numpy()


@functools.lru_cache(maxsize=8)
def htk_mel_basis(*, sr: int, n_fft: int, n_mels: int, f_max: float) -> torch.Tensor:
    """torchaudio's default mel filters (HTK scale, no normalisation), 0 Hz..``f_max``.

    Returns:
        [shape=(1 + n_fft // 2, n_mels)] float32 (torchaudio's layout).
    """
    import torchaudio.functional as AF

    return AF.melscale_fbanks(n_fft // 2 + 1, 0.0, f_max, n_mels, sr)


def htk_mel_magnitude(
    y: torch.Tensor, *, sr: int, n_fft: int, hop_length: int, n_mels: int, f_max: float
) -> torch.Tensor:
    """HTK mel of the STFT magnitude with reflected edges (torchaudio.transforms.MelSpectrogram
    with ``power=1``): the supervised model's representation.

    Args:
        y: [shape=(..., L)] signal(s).

    Returns:
        [shape=(..., n_mels, T)] with T = L // hop_length + 1.
    """
    shape = y.shape
    X = torch.stft(
        y.reshape(-1, shape[-1]),
        n_fft,
        hop_length,
        n_fft,
        torch.hann_window(n_fft, device=y.device, dtype=y.dtype),
        center=True,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    magnitude = X.reshape(shape[:-1] + X.shape[-2:]).abs()  # (..., F, T)
    fb = htk_mel_basis(sr=sr, n_fft=n_fft, n_mels=n_mels, f_max=f_max).to(y.device)
    return torch.matmul(magnitude.transpose(-1, -2), fb).transpose(-1, -2)


@overload
def power_to_db(S: np.ndarray, *, ref: float | None = 1.0, top_db: float = 80.0) -> np.ndarray: ...
@overload
def power_to_db(
    S: torch.Tensor, *, ref: float | None = 1.0, top_db: float = 80.0
) -> torch.Tensor: ...
def power_to_db(S: _Array, *, ref: float | None = 1.0, top_db: float = 80.0) -> _Array:
    """[dB] ``10 log10(S / ref)``, floored ``top_db`` below the maximum (librosa.power_to_db).

    Args:
        S: [shape=(..., F, T)] power (numpy or torch; the result is the same kind and dtype).
        ref: [power] the 0 dB reference; ``None`` = the loudest bin (librosa's ``ref=np.max``).
        top_db: [dB] dynamic range kept.

    Returns:
        [shape=S.shape] dB; also floored at -100 dB of absolute power (:data:`AMIN`).
    """
    x = torch.from_numpy(S) if isinstance(S, np.ndarray) else S
    reference = float(x.max()) if ref is None else ref
    db = 10.0 * torch.log10(x.clamp_min(AMIN)) - 10.0 * math.log10(max(AMIN, reference))
    db = db.clamp_min(db.max() - top_db)
    return db.numpy() if isinstance(S, np.ndarray) else db


@overload
def onset_strength(S_db: np.ndarray, *, delay: int = 1) -> np.ndarray: ...
@overload
def onset_strength(S_db: torch.Tensor, *, delay: int = 1) -> torch.Tensor: ...
def onset_strength(S_db: _Array, *, delay: int = 1) -> _Array:
    """Spectral flux (librosa.onset.onset_strength at lag 1, mean over bands).

    Per band the rise since the previous frame, negatives dropped, averaged over bands; frame
    ``t`` holds the flux from frame ``t - delay`` to ``t - delay + 1`` and the first ``delay``
    frames are 0. ``delay=1`` is librosa's ``center=False``; librosa's ``center=True`` delays
    by ``1 + n_fft // (2 * hop_length)`` frames.

    Args:
        S_db: [shape=(F, T)] log-mel spectrogram in dB (numpy or torch).
        delay: [frames] >= 1.

    Returns:
        [shape=(T,)] onset strength in dB (mean rise per band), the same kind and dtype.
    """
    x = torch.from_numpy(S_db) if isinstance(S_db, np.ndarray) else S_db
    F, T = x.shape
    flux = torch.relu(x[:, 1:] - x[:, :-1]).mean(dim=0)
    out = torch.zeros(T, dtype=x.dtype)
    if delay < T:
        out[delay:] = flux[: T - delay]
    return out.numpy() if isinstance(S_db, np.ndarray) else out
