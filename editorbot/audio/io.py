"""Audio I/O: load anything libsndfile reads, validate it, resample, write atomically.

Analysis runs on a mono copy at one fixed rate (``AudioConfig.analysis_sr``, 22,050 Hz); rendering
uses the original rate and channels, so :class:`Audio` keeps the original samples. A long track
need not be decoded whole: :func:`open_audio` checks it block by block and returns an
:class:`AudioFile` (WAV, FLAC, AIFF: formats whose seek is sample-exact), which reads any range
from the file when asked; :func:`analysis_signal` is computed a block at a time from either.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from editorbot.atomic import atomic_path
from editorbot.errors import AudioLoadError, ParameterError

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")


@dataclass(frozen=True)
class AudioConfig:
    """How audio is read and checked."""

    analysis_sr: int = 22050
    """[Hz] rate of the mono copy every analysis (beats, features, alignment) runs on."""
    min_duration_sec: float = 4.0
    """[s] shortest usable track: 8 beats at 120 BPM, the least a beat grid with a bar needs."""
    silence_dbfs: float = -80.0
    """[dBFS] a track whose peak is below this is 'all silent'."""


@dataclass(frozen=True, eq=False)
class Audio:
    """A loaded track at its own rate and channels.

    Attributes:
        y: [shape=(C, L)] float32 samples in [-1, 1] (not clipped on load).
        sr: [Hz] sample rate.
        path: where it was read from, if anywhere.
    """

    y: np.ndarray
    sr: int
    path: Path | None = field(default=None)

    @property
    def n_channels(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.y.shape[1])

    @property
    def duration_sec(self) -> float:
        return self.n_samples / self.sr

    def name(self) -> str:
        return str(self.path) if self.path is not None else "<audio>"

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end), zero outside the track. [shape=(C, end - start)] float32."""
        C, L = self.y.shape
        if start >= 0 and end <= L:
            return self.y[:, start:end]
        out = np.zeros((C, end - start), dtype=np.float32)
        lo, hi = max(start, 0), min(end, L)
        if hi > lo:
            out[:, lo - start : hi - start] = self.y[:, lo:hi]
        return out


SEEKABLE_FORMATS = frozenset({"WAV", "WAVEX", "AIFF", "FLAC", "W64", "RF64", "CAF"})
"""libsndfile formats whose seek lands on the exact sample (PCM containers and FLAC): an
:class:`AudioFile` reads them by seek; compressed formats are decoded whole (:class:`Audio`)."""
_SCAN_FRAMES = 1 << 18
"""[frames] block read by :func:`open_audio`'s checks (6 s at 44.1 kHz, 2 MB per stereo block)."""


@dataclass(frozen=True, eq=False)
class AudioFile:
    """A checked track left on disk: :meth:`read` decodes any range when asked.

    The same interface as :class:`Audio` less ``y``; the samples it reads are those
    :func:`load_audio` would hold (libsndfile's float32 conversion of the same frames).

    Attributes:
        path: the file.
        sr: [Hz] sample rate.
        n_channels: channels.
        n_samples: [samples] frames decoded by the checks (the header's count, unless cut).
    """

    path: Path
    sr: int
    n_channels: int
    n_samples: int

    @property
    def duration_sec(self) -> float:
        return self.n_samples / self.sr

    def name(self) -> str:
        return str(self.path)

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end), zero outside the track. [shape=(C, end - start)] float32.

        Raises:
            AudioLoadError: the file changed or stopped decoding since it was checked.
        """
        out = np.zeros((self.n_channels, end - start), dtype=np.float32)
        lo, hi = max(start, 0), min(end, self.n_samples)
        if hi <= lo:
            return out
        try:
            with sf.SoundFile(str(self.path)) as f:
                f.seek(lo)
                data = f.read(hi - lo, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError, EOFError, OSError) as e:
            raise AudioLoadError(f"{self.path}: stopped decoding ({e}); re-export the file") from e
        if data.shape != (hi - lo, self.n_channels):
            raise AudioLoadError(
                f"{self.path}: {data.shape[0]} frames at {lo}, expected {hi - lo} (the file "
                "changed while it was edited); run again"
            )
        out[:, lo - start : hi - start] = data.T
        return out


def open_audio(
    path: str | Path,
    *,
    config: AudioConfig | None = None,
    check_duration: bool = True,
    check_silence: bool = True,
) -> Audio | AudioFile:
    """A checked track, decoded whole only when its format cannot seek to the sample.

    The checks of :func:`load_audio` (the same messages), made a block at a time: a WAV, FLAC or
    AIFF file comes back as an :class:`AudioFile` and nothing of it stays in memory; any other
    format (OGG, MP3, Opus) is decoded by :func:`load_audio`.

    Raises:
        AudioLoadError: as :func:`load_audio`.
    """
    config = config or AudioConfig()
    path = _check_path(Path(path))
    with _open(path) as f:
        seekable = f.format in SEEKABLE_FORMATS
    if not seekable:
        return load_audio(path, config=config, check_duration=check_duration,
                          check_silence=check_silence)  # fmt: skip
    with _open(path) as f:
        sr, C = int(f.samplerate), int(f.channels)
        _check_chunk_sizes(path, f.extra_info)
        L, n_bad, peak = 0, 0, 0.0
        while True:
            block = _decode(f, path, _SCAN_FRAMES)
            if block.shape[0] == 0:
                break
            L += block.shape[0]
            finite = np.isfinite(block)
            n_bad += int(block.size - np.count_nonzero(finite))
            if n_bad == 0:
                peak = max(peak, float(block.max()), -float(block.min()))
    _check(L, C, sr, n_bad, peak, path, config, check_duration=check_duration,
           check_silence=check_silence)  # fmt: skip
    return AudioFile(path=path, sr=sr, n_channels=C, n_samples=L)


def load_audio(
    path: str | Path,
    *,
    config: AudioConfig | None = None,
    check_duration: bool = True,
    check_silence: bool = True,
) -> Audio:
    """Read and validate an audio file.

    Args:
        path: WAV, FLAC, OGG/Vorbis/Opus, MP3 or anything else libsndfile reads.
        config: thresholds; defaults to ``AudioConfig()``.
        check_duration: refuse tracks shorter than ``config.min_duration_sec``.
        check_silence: refuse all-silent tracks (off for stems: a song may have no vocals).

    Returns:
        The track at its own rate and channels.

    Raises:
        AudioLoadError: missing, not audio, corrupt or truncated, empty, non-finite, all-silent,
            or too short; the message names the file and the fix.
    """
    config = config or AudioConfig()
    path = _check_path(Path(path))
    y, sr = _read(path)
    _validate(y, sr, path, config, check_duration=check_duration, check_silence=check_silence)
    return Audio(y=y, sr=sr, path=path)


def _check_path(path: Path) -> Path:
    if not path.exists():
        raise AudioLoadError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise AudioLoadError(f"{path}: is a folder, expected an audio file")
    return path


def _read(path: Path) -> tuple[np.ndarray, int]:
    with _open(path) as f:
        sr = int(f.samplerate)
        _check_chunk_sizes(path, f.extra_info)
        data = _decode(f, path, -1)
    return np.ascontiguousarray(data.T), sr


def _open(path: Path) -> sf.SoundFile:
    if path.stat().st_size == 0:
        raise AudioLoadError(f"{path}: empty file (0 bytes); re-export the audio")
    try:
        return sf.SoundFile(str(path))
    except sf.LibsndfileError as e:
        raise AudioLoadError(
            f"{path}: not readable as audio ({e.error_string.strip() or e}); "
            "expected WAV, FLAC, OGG/Vorbis/Opus or MP3 — re-export or convert the file"
        ) from e


def _decode(f: sf.SoundFile, path: Path, frames: int) -> np.ndarray:
    """The next ``frames`` frames (-1: all the rest). [shape=(n, C)] float32."""
    try:
        return f.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as e:
        # The header parsed but the stream did not decode (FLAC/Vorbis/MP3 cut short).
        raise AudioLoadError(f"{path}: corrupt or truncated audio ({e}); re-export the file") from e


_CHUNK_SHORT = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_BYTES_PER_SEC = re.compile(r"Bytes/sec\s*:\s*(\d+)")


def _check_chunk_sizes(path: Path, extra_info: str) -> None:
    """A cut WAV/AIFF keeps its header's data size; libsndfile then silently reads what is left
    (its ``frames`` already shrunk) and notes ``data : N (should be M)`` in its log."""
    short = _CHUNK_SHORT.search(extra_info)
    if short is None:
        return
    declared, present = int(short.group(1)), int(short.group(2))
    rate = _BYTES_PER_SEC.search(extra_info)
    if rate is None or int(rate.group(1)) == 0:
        sizes = f"{declared} bytes of audio but only {present}"
    else:
        bytes_per_sec = int(rate.group(1))
        sizes = f"{declared / bytes_per_sec:.2f} s but only {present / bytes_per_sec:.2f} s"
    raise AudioLoadError(
        f"{path}: truncated: the header declares {sizes} are in the file; re-export the file"
    )


def _validate(
    y: np.ndarray,
    sr: int,
    path: Path,
    config: AudioConfig,
    *,
    check_duration: bool,
    check_silence: bool,
) -> None:
    C, L = y.shape
    n_bad = int(y.size - np.count_nonzero(np.isfinite(y)))
    # max(|max|, |min|) is max |y| exactly, without a temporary the size of the track
    peak = max(float(y.max()), -float(y.min())) if n_bad == 0 and y.size else 0.0
    _check(L, C, sr, n_bad, peak, path, config, check_duration=check_duration,
           check_silence=check_silence)  # fmt: skip


def _check(
    L: int,
    C: int,
    sr: int,
    n_bad: int,
    peak: float,
    path: Path,
    config: AudioConfig,
    *,
    check_duration: bool,
    check_silence: bool,
) -> None:
    """Refuse a track from its size, count of non-finite samples and peak."""
    if L == 0 or C == 0:
        raise AudioLoadError(f"{path}: contains no audio samples; re-export the file")
    if n_bad:
        raise AudioLoadError(
            f"{path}: {n_bad} NaN/inf samples; the file is corrupt — re-export it as PCM"
        )
    if check_silence and peak <= 10 ** (config.silence_dbfs / 20):
        raise AudioLoadError(
            f"{path}: all silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS); "
            "check that the right file was exported"
        )
    duration = L / sr
    if check_duration and duration < config.min_duration_sec:
        raise AudioLoadError(
            f"{path}: {duration:.1f} s of audio, need at least {config.min_duration_sec:.0f} s "
            "(about 8 beats) for a beat grid; use a longer track"
        )


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average channels. [shape=(C, L)] -> [shape=(L,)]."""
    C, L = y.shape
    return y.mean(axis=0, dtype=np.float32) if C > 1 else y[0].astype(np.float32, copy=False)


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling with torchaudio (windowed sinc). [shape=(..., L)]."""
    if orig_sr == target_sr:
        return y.astype(np.float32, copy=False)
    if orig_sr <= 0 or target_sr <= 0:
        raise ParameterError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    import torch
    import torchaudio.functional as AF

    out = AF.resample(
        torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)), orig_sr, target_sr
    )
    return out.numpy()


def analysis_signal(audio: Audio | AudioFile, *, config: AudioConfig | None = None) -> np.ndarray:
    """The mono copy at the analysis rate that beats and features are computed from.

    Made a block at a time (:func:`resample_blocks`): what a block holds is a few MB, whatever
    the track's length, rate and channels, and the result is :func:`resample` of
    :func:`to_mono` of the whole track.

    Returns:
        [shape=(about L * analysis_sr / sr,)] float32.
    """
    config = config or AudioConfig()

    def mono(start: int, end: int) -> np.ndarray:
        return to_mono(audio.read(start, end))

    return resample_blocks(mono, audio.n_samples, orig_sr=audio.sr, target_sr=config.analysis_sr)


_RESAMPLE_BLOCK = 1 << 18
"""[input samples] about what one block of :func:`resample_blocks` reads (6 s at 44.1 kHz). From
2^17 up, torch's convolution took the same path as on the whole track at every rate tried
(8-96 kHz), so the blocks' samples equal the whole-track resampling bit for bit."""
_LOWPASS_WIDTH, _ROLLOFF = 6, 0.99
"""torchaudio.functional.resample's defaults (zero crossings of the sinc, cutoff / Nyquist)."""


def _resampled_length(n_samples: int, o: int, n: int) -> int:
    """[samples] torchaudio's output length: ``ceil`` of ``n * L / o`` held in a float32 tensor
    (so past 2^24 samples it may differ by one from the exact ceiling)."""
    import torch

    return int(torch.ceil(torch.as_tensor(n * n_samples / o)))


def resample_blocks(
    read: Callable[[int, int], np.ndarray], n_samples: int, *, orig_sr: int, target_sr: int
) -> np.ndarray:
    """:func:`resample` of a long signal read a block at a time, with the same samples.

    torchaudio's resampler is a polyphase convolution: with ``g = gcd(orig_sr, target_sr)``,
    each run of ``o = orig_sr / g`` input samples (a frame) yields ``n = target_sr / g`` output
    samples from the input within the kernel's reach (``width`` samples either side). A block of
    whole frames read with ``c`` frames of context on both sides (zeros past the track's ends,
    as torchaudio pads) yields exactly the whole-track outputs of its frames. Blocks are all of
    one length (the last one starts early and overlaps its neighbour), so every convolution
    call has the same shape.

    Args:
        read: ``read(start, end)`` -> [shape=(end - start,)] float32 mono samples, zero outside
            ``[0, n_samples)``.
        n_samples: [samples] signal length.
        orig_sr, target_sr: [Hz] rates.

    Returns:
        [shape=(about n_samples * target_sr / orig_sr,)] float32 (torchaudio's length).
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ParameterError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    g = math.gcd(orig_sr, target_sr)
    o, n = orig_sr // g, target_sr // g
    total = _resampled_length(n_samples, o, n)
    out = np.empty(total, dtype=np.float32)
    width = math.ceil(_LOWPASS_WIDTH * o / (min(o, n) * _ROLLOFF))  # torchaudio's, in samples
    c = width // o + 2  # [frames] context: the kernel spans [-width, width + o) samples
    n_frames = -(-total // n)
    block = max(1, _RESAMPLE_BLOCK // o)  # [frames]
    for first in range(0, n_frames, block):
        f0 = max(0, min(first, n_frames - block))
        f1 = min(f0 + block, n_frames)
        x = read((f0 - c) * o, (f1 + c) * o)
        y = x if o == n else resample(x, orig_sr=orig_sr, target_sr=target_sr)
        stop = min(f1 * n, total)
        out[f0 * n : stop] = y[c * n : c * n + stop - f0 * n]
    return out


def write_audio(
    path: str | Path,
    y: np.ndarray,
    *,
    sr: int,
    subtype: str = "FLOAT",
    protect: tuple[str | Path, ...] = (),
) -> Path:
    """Write [shape=(C, L)] audio atomically. Refuses to overwrite any path in ``protect``.

    ``subtype='FLOAT'`` keeps float32 samples bit-exact, so a render read back equals what was
    rendered; pass ``'PCM_16'``/``'PCM_24'`` for delivery formats.
    """
    if y.ndim != 2:
        raise ParameterError(f"expected audio of shape (channels, samples), got {y.shape}")
    with audio_writer(path, sr=sr, n_channels=y.shape[0], subtype=subtype,
                      protect=protect) as write:  # fmt: skip
        write(y)
    return Path(path)


@contextlib.contextmanager
def audio_writer(
    path: str | Path,
    *,
    sr: int,
    n_channels: int,
    subtype: str = "FLOAT",
    protect: tuple[str | Path, ...] = (),
) -> Iterator[Callable[[np.ndarray], None]]:
    """Write audio a block at a time: yields ``write(y)`` for [shape=(C, n)] blocks, in order.

    The blocks go to a temporary file beside ``path`` that replaces it when the ``with`` block
    ends without an error (:func:`editorbot.atomic.atomic_path`); on an error nothing is left.
    Format and subtype as :func:`write_audio`, which is this with one block.

    Raises:
        ParameterError: ``path`` is one of ``protect`` or not .wav/.flac/.ogg.
    """
    path = Path(path)
    for p in protect:
        if path.exists() and Path(p).exists() and path.resolve() == Path(p).resolve():
            raise ParameterError(
                f"{path}: refusing to overwrite an input file; choose another --out"
            )
    fmt = sf.available_formats()
    ext = path.suffix.lower().lstrip(".")
    file_format = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG"}.get(ext)
    if file_format is None or file_format not in fmt:
        raise ParameterError(f"{path}: write .wav, .flac or .ogg (got {path.suffix!r})")
    if file_format != "WAV" and subtype == "FLOAT":
        subtype = "PCM_24" if file_format == "FLAC" else "VORBIS"
    with (
        atomic_path(path) as tmp,
        sf.SoundFile(
            str(tmp), "w", samplerate=sr, channels=n_channels, subtype=subtype, format=file_format
        ) as f,  # fmt: skip
    ):

        def write(y: np.ndarray) -> None:
            assert y.ndim == 2 and y.shape[0] == n_channels, (y.shape, n_channels)
            f.write(np.ascontiguousarray(y.T))

        yield write


MAX_INPUT_SEC = 30 * 60.0
"""[s] longest track ``edit`` takes by default (its memory grows with the duration: the
22,050 Hz mono analysis signal and the passes over it, whatever the rate and channels)."""
MAX_INPUT_BYTES = 2**30
"""[bytes] largest decoded float32 signal (frames x channels x 4) ``edit`` takes by default from
a format it decodes whole (not in :data:`SEEKABLE_FORMATS`: OGG, MP3, Opus)."""


def check_input_size(
    path: str | Path, *, max_sec: float = MAX_INPUT_SEC, max_bytes: int = MAX_INPUT_BYTES
) -> float:
    """Refuse, from the header alone (``soundfile.info``, nothing decoded), a track too long, or
    too large to decode in memory when its format must be decoded whole.

    A WAV, FLAC or AIFF file is read by seek a block at a time (:func:`open_audio`), so only its
    duration is bounded; other formats are held decoded, so their size is bounded too.

    Returns:
        [s] its duration (0.0 when the header cannot be read: :func:`load_audio` then reports
        the file).

    Raises:
        AudioLoadError: longer than ``max_sec``, or (formats decoded whole) more than
            ``max_bytes`` decoded, naming the limit.
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return 0.0
    decoded = int(info.frames) * int(info.channels) * 4  # float32
    whole = info.format not in SEEKABLE_FORMATS  # decoded into memory, not read by seek
    if info.duration > max_sec or (whole and decoded > max_bytes):
        size = f" and {max_bytes / 2**30:.1f} GiB decoded ({info.format})" if whole else ""
        raise AudioLoadError(
            f"{path}: {info.duration / 60:.1f} min, {info.channels} channels at "
            f"{info.samplerate} Hz ({decoded / 2**30:.2f} GiB decoded); edit takes at most "
            f"{max_sec / 60:.0f} min{size} (--max-input-sec); split the track first"
        )
    return float(info.duration)
