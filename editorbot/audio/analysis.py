"""One track in, its beat grid and 121-column beat-feature table out.

The pipeline: the mono analysis signal (22,050 Hz) -> :func:`editorbot.audio.beats.track_beats`
-> :func:`editorbot.audio.features.beat_features`. Stems (when ``FeatureConfig.use_stems``) come
either from a folder of precomputed stems in Demucs's output layout
(``STEMS_DIR/<track>/{drums,bass,other,vocals}.wav``) or from HTDemucs run now on local weights
(:mod:`editorbot.audio.stems`).

Shape:
    features: [shape=(n_beats, 121)] float32, columns ``names``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from editorbot.audio.beats import BeatConfig, BeatGrid, track_beats
from editorbot.audio.features import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    STEM_NAMES,
    FeatureConfig,
    beat_features,
)
from editorbot.audio.io import (
    AUDIO_EXTENSIONS,
    Audio,
    AudioConfig,
    AudioFile,
    analysis_signal,
    load_audio,
    resample,
    to_mono,
)
from editorbot.errors import AudioLoadError, ParameterError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TrackFeatures:
    """The analysis of one track.

    Attributes:
        grid: the beat grid (times in seconds, tempo, downbeat phase).
        features: [shape=(n_beats, 121)] float32 beat features.
        names: the 121 column names of ``features``.
        meta: ``sample_rate`` [Hz], ``n_channels``, ``duration_sec`` [s], ``tempo`` [BPM],
            ``downbeat_phase``, ``stems`` (flag), ``feature_version``, and ``source`` (path).
    """

    grid: BeatGrid
    features: np.ndarray
    names: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_beats, F = self.features.shape
        assert n_beats == self.grid.n_beats, (n_beats, self.grid.n_beats)
        assert len(self.names) == F, (F, len(self.names))

    @property
    def has_stems(self) -> bool:
        return bool(self.meta["stems"])


def analyze(
    audio: Audio | AudioFile,
    *,
    audio_config: AudioConfig | None = None,
    beat_config: BeatConfig | None = None,
    feature_config: FeatureConfig | None = None,
    stems_dir: str | Path | None = None,
    demucs_dir: str | Path | None = None,
    stems_cache_dir: str | Path | None = None,
) -> TrackFeatures:
    """Beat grid and beat features of a loaded track.

    Args:
        audio: the track at its own rate and channels (in memory, or a checked file read a
            block at a time: the same features).
        audio_config: analysis rate; defaults to ``AudioConfig()``.
        beat_config: beat tracker settings; defaults to ``BeatConfig()``.
        feature_config: feature settings; defaults to ``FeatureConfig()``.
        stems_dir: folder of precomputed stems (``<stems_dir>/<track>/<stem>.wav``).
        demucs_dir: demucs weights (folder or ``.th`` file) to separate the stems now.
        stems_cache_dir: where separated stems are cached (with ``demucs_dir``).

    Exactly one stem source is needed when ``feature_config.use_stems`` is set, none otherwise.

    Raises:
        AudioLoadError: too few beats, or a stem file missing or unreadable.
        ParameterError: stems asked for without a source, or a source without stems.
        CheckpointError: the demucs weights are missing or unusable.
    """
    audio_config = audio_config or AudioConfig()
    feature_config = feature_config or FeatureConfig()
    sr = audio_config.analysis_sr
    y = analysis_signal(audio, config=audio_config)
    grid = track_beats(y, sr=sr, config=beat_config, name=audio.name())
    _check_stem_source(audio, feature_config.use_stems, stems_dir, demucs_dir)
    stems: dict[str, np.ndarray] | None = None
    if stems_dir is not None:
        stems = _stems_from_folder(audio, stems_dir, sr=sr, L=len(y))
    elif demucs_dir is not None:
        stems = _stems_from_demucs(audio, demucs_dir, audio_config, stems_cache_dir, L=len(y))
    features = _beat_features(y, sr=sr, grid=grid, config=feature_config, stems=stems)
    return _track_features(audio, grid, features, has_stems=stems is not None)


def analyze_on_grid(
    audio: Audio | AudioFile,
    grid: BeatGrid,
    *,
    audio_config: AudioConfig | None = None,
    feature_config: FeatureConfig | None = None,
) -> TrackFeatures:
    """Beat features of a loaded track on a given grid (a decision list's), without stems.

    What training computes for a labelled track; on the grid :func:`analyze` tracks, it gives
    :func:`analyze`'s features, so the policy sees the same inputs at ``edit``.

    Raises:
        ParameterError: ``feature_config.use_stems`` is on (stems need :func:`analyze`).
    """
    audio_config = audio_config or AudioConfig()
    feature_config = feature_config or FeatureConfig()
    _check_stem_source(audio, feature_config.use_stems, None, None)
    y = analysis_signal(audio, config=audio_config)
    sr = audio_config.analysis_sr
    features = _beat_features(y, sr=sr, grid=grid, config=feature_config, stems=None)
    return _track_features(audio, grid, features, has_stems=False)


def _track_features(
    audio: Audio | AudioFile, grid: BeatGrid, features: np.ndarray, *, has_stems: bool
) -> TrackFeatures:
    meta = {
        "sample_rate": audio.sr,
        "n_channels": audio.n_channels,
        "duration_sec": audio.duration_sec,
        "tempo": grid.tempo_bpm,
        "downbeat_phase": grid.downbeat_phase,
        "stems": has_stems,
        "feature_version": FEATURE_VERSION,
        "source": audio.name(),
    }
    return TrackFeatures(grid=grid, features=features, names=tuple(FEATURE_NAMES), meta=meta)


def stems_identity(
    audio: Audio | AudioFile,
    *,
    stems_dir: str | Path | None = None,
    demucs_dir: str | Path | None = None,
) -> str:
    """What the stems of ``audio`` would be made from, as a string for cache keys.

    Precomputed stems: a hash of their files' bytes. Demucs: the model's weight signature.
    """
    import hashlib

    if stems_dir is not None:
        digest = hashlib.sha256()
        for path in sorted(_stem_folder(audio, stems_dir).glob("*")):
            if path.suffix.lower() in AUDIO_EXTENSIONS:
                digest.update(path.name.encode() + path.read_bytes())
        return f"dir:{digest.hexdigest()}"
    if demucs_dir is not None:
        from editorbot.audio.stems import model_signature

        return f"demucs:{model_signature(_separator(str(demucs_dir)))}"
    return ""


def _beat_features(
    y: np.ndarray,
    *,
    sr: int,
    grid: BeatGrid,
    config: FeatureConfig,
    stems: dict[str, np.ndarray] | None,
) -> np.ndarray:
    return beat_features(
        y,
        sr=sr,
        beat_times=grid.beat_times,
        tempo_bpm=grid.tempo_bpm,
        downbeat_phase=grid.downbeat_phase,
        config=config,
        stems=stems,
    )


def _check_stem_source(
    audio: Audio | AudioFile,
    use_stems: bool,
    stems_dir: str | Path | None,
    demucs_dir: str | Path | None,
) -> None:
    n_sources = (stems_dir is not None) + (demucs_dir is not None)
    if use_stems and n_sources != 1:
        raise ParameterError(
            f"{audio.name()}: FeatureConfig.use_stems is on but "
            + (
                "both a stems folder and demucs weights were given; pass one"
                if n_sources
                else "no stems folder was given; pass --stems-dir (Demucs "
                "layout: DIR/<track>/drums.wav ...) or --demucs-dir (weights)"
            )
        )
    if not use_stems and n_sources:
        raise ParameterError(
            f"{audio.name()}: a stem source was given but FeatureConfig.use_stems is off; "
            "set use_stems or drop the stem source"
        )


def _stem_folder(audio: Audio | AudioFile, stems_dir: str | Path) -> Path:
    return Path(stems_dir) / (Path(audio.path).stem if audio.path is not None else "audio")


def _stems_from_folder(
    audio: Audio | AudioFile, stems_dir: str | Path, *, sr: int, L: int
) -> dict[str, np.ndarray]:
    """Mono stems at the analysis rate, trimmed or zero-padded to ``L`` samples."""
    folder = _stem_folder(audio, stems_dir)
    return {s: _load_stem(folder, s, sr=sr, L=L) for s in STEM_NAMES}


@functools.lru_cache(maxsize=2)  # one model per worker process, not one per track
def _separator(demucs_dir: str) -> Any:
    from editorbot.audio.stems import load_separator

    return load_separator(demucs_dir)


def _stems_from_demucs(
    audio: Audio | AudioFile,
    demucs_dir: str | Path,
    config: AudioConfig,
    cache_dir: str | Path | None,
    *,
    L: int,
) -> dict[str, np.ndarray]:
    from editorbot.audio.stems import separate_stems

    if isinstance(audio, AudioFile):  # the separator takes the whole track
        audio = load_audio(audio.path, check_duration=False, check_silence=False)
    stems = separate_stems(
        audio, model=_separator(str(demucs_dir)), config=config, cache_dir=cache_dir
    )
    return {s: np.pad(y[:L], (0, max(0, L - len(y)))) for s, y in stems.items()}


def _load_stem(folder: Path, stem: str, *, sr: int, L: int) -> np.ndarray:
    candidates = sorted(p for p in folder.glob(f"{stem}.*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not candidates:
        raise AudioLoadError(
            f"{folder / stem}.wav: stem missing; separate the track with demucs into {folder}"
        )
    stem_audio = load_audio(candidates[0], check_duration=False, check_silence=False)
    y = resample(to_mono(stem_audio.y), orig_sr=stem_audio.sr, target_sr=sr)
    if abs(len(y) - L) > 0.01 * sr:  # a stem more than 10 ms off the mix is another track
        raise AudioLoadError(
            f"{candidates[0]}: stem lasts {len(y) / sr:.2f} s but the track {L / sr:.2f} s; "
            "re-run the separation on this track"
        )
    return np.pad(y[:L], (0, max(0, L - len(y))))
