"""Audio I/O: load anything libsndfile reads, validate it, resample, write atomically.

Analysis runs on a mono copy at one fixed rate (``AudioConfig.analysis_sr``, 22,050 Hz); rendering
uses the original rate and channels, so :class:`Audio` keeps the original samples.
"""

from __future__ import annotations

import logging
import re
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
    path = Path(path)
    if not path.exists():
        raise AudioLoadError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise AudioLoadError(f"{path}: is a folder, expected an audio file")
    y, sr = _read(path)
    _validate(y, sr, path, config, check_duration=check_duration, check_silence=check_silence)
    return Audio(y=y, sr=sr, path=path)


def _read(path: Path) -> tuple[np.ndarray, int]:
    if path.stat().st_size == 0:
        raise AudioLoadError(f"{path}: empty file (0 bytes); re-export the audio")
    try:
        f = sf.SoundFile(str(path))
    except sf.LibsndfileError as e:
        raise AudioLoadError(
            f"{path}: not readable as audio ({e.error_string.strip() or e}); "
            "expected WAV, FLAC, OGG/Vorbis/Opus or MP3 — re-export or convert the file"
        ) from e
    with f:
        sr = int(f.samplerate)
        _check_chunk_sizes(path, f.extra_info)
        try:
            data = f.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as e:
            # The header parsed but the stream did not decode (FLAC/Vorbis/MP3 cut short).
            raise AudioLoadError(
                f"{path}: corrupt or truncated audio ({e}); re-export the file"
            ) from e
    return np.ascontiguousarray(data.T), sr


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
    if L == 0 or C == 0:
        raise AudioLoadError(f"{path}: contains no audio samples; re-export the file")
    if not np.isfinite(y).all():
        n_bad = int((~np.isfinite(y)).sum())
        raise AudioLoadError(
            f"{path}: {n_bad} NaN/inf samples; the file is corrupt — re-export it as PCM"
        )
    peak = float(np.abs(y).max())
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


def analysis_signal(audio: Audio, *, config: AudioConfig | None = None) -> np.ndarray:
    """The mono copy at the analysis rate that beats and features are computed from."""
    config = config or AudioConfig()
    return resample(to_mono(audio.y), orig_sr=audio.sr, target_sr=config.analysis_sr)


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
    path = Path(path)
    for p in protect:
        if path.exists() and Path(p).exists() and path.resolve() == Path(p).resolve():
            raise ParameterError(
                f"{path}: refusing to overwrite an input file; choose another --out"
            )
    if y.ndim != 2:
        raise ParameterError(f"expected audio of shape (channels, samples), got {y.shape}")
    fmt = sf.available_formats()
    ext = path.suffix.lower().lstrip(".")
    file_format = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG"}.get(ext)
    if file_format is None or file_format not in fmt:
        raise ParameterError(f"{path}: write .wav, .flac or .ogg (got {path.suffix!r})")
    if file_format != "WAV" and subtype == "FLOAT":
        subtype = "PCM_24" if file_format == "FLAC" else "VORBIS"
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.ascontiguousarray(y.T), sr, subtype=subtype, format=file_format)
    return path


MAX_INPUT_SEC = 30 * 60.0
"""[s] longest track ``edit`` takes by default (memory grows with the decoded length)."""
MAX_INPUT_BYTES = 2**30
"""[bytes] largest decoded float32 signal (frames x channels x 4) ``edit`` takes by default."""


def check_input_size(
    path: str | Path, *, max_sec: float = MAX_INPUT_SEC, max_bytes: int = MAX_INPUT_BYTES
) -> float:
    """Refuse, from the header alone (``soundfile.info``, nothing decoded), a track too long or
    too large to decode in memory.

    Returns:
        [s] its duration (0.0 when the header cannot be read: :func:`load_audio` then reports
        the file).

    Raises:
        AudioLoadError: longer than ``max_sec`` or more than ``max_bytes`` decoded, naming the
            limit.
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return 0.0
    decoded = int(info.frames) * int(info.channels) * 4  # float32
    if info.duration > max_sec or decoded > max_bytes:
        raise AudioLoadError(
            f"{path}: {info.duration / 60:.1f} min, {info.channels} channels at "
            f"{info.samplerate} Hz ({decoded / 2**30:.2f} GiB decoded); edit takes at most "
            f"{max_sec / 60:.0f} min and {max_bytes / 2**30:.1f} GiB (--max-input-sec); split "
            "the track first"
        )
    return float(info.duration)
