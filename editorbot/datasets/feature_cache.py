"""Feature tables on disk: Parquet files, a content-keyed cache, and the parallel extraction job.

A table has the columns ``beat_index``, ``beat_time`` [s], then the 121 features, and carries the
track metadata (sample rate, tempo, downbeat phase, stems flag, feature version, ...) in the
Parquet schema metadata under ``editorbot``. The cache key is the sha256 of the decoded audio
samples and rate, the audio/beat/feature configs and the code versions — never the path or
mtime, so a renamed or touched file is still a hit and an edited one never is.

One file runs in-process here; many files run as Ray tasks in
:mod:`editorbot.training.features_job` (feature extraction as Ray tasks).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from editorbot.atomic import atomic_path
from editorbot.audio.analysis import TrackFeatures, analyze, stems_identity
from editorbot.audio.beats import BEAT_VERSION, BeatConfig, BeatGrid
from editorbot.audio.features import FEATURE_VERSION, FeatureConfig
from editorbot.audio.io import Audio, AudioConfig, load_audio
from editorbot.errors import DatasetError, ParameterError

logger = logging.getLogger(__name__)

META_KEY = b"editorbot"
"""Parquet schema-metadata key holding the track metadata (JSON)."""
TABLE_FORMAT = "1"
"""Version of the table layout; part of the cache key."""


@dataclass(frozen=True)
class ExtractConfig:
    """Everything that decides a feature table (all of it goes into the cache key)."""

    audio: AudioConfig = field(default_factory=AudioConfig)
    """Audio reading and the analysis rate."""
    beats: BeatConfig = field(default_factory=BeatConfig)
    """Beat tracker settings."""
    features: FeatureConfig = field(default_factory=FeatureConfig)
    """Beat-feature settings (``use_stems`` included)."""


def cache_key(audio: Audio, config: ExtractConfig, *, stems_id: str = "") -> str:
    """sha256 hex of the decoded samples, their rate and shape, the configs and code versions.

    Args:
        audio: the decoded track.
        config: every setting that shapes the table.
        stems_id: what the stems are made from (:func:`editorbot.audio.analysis.stems_identity`).
    """
    h = hashlib.sha256()
    y = np.ascontiguousarray(audio.y, dtype=np.float32)
    h.update(json.dumps({"sr": audio.sr, "shape": list(y.shape)}).encode())
    h.update(y.tobytes())
    versions = {"table": TABLE_FORMAT, "beats": BEAT_VERSION, "features": FEATURE_VERSION}
    described = {"config": asdict(config), "versions": versions, "stems": stems_id}
    h.update(json.dumps(described, sort_keys=True).encode())
    return h.hexdigest()


def write_table(track: TrackFeatures, path: str | Path, *, key: str | None = None) -> Path:
    """Write ``track`` as Parquet, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n_beats, F = track.features.shape
    columns: dict[str, Any] = {
        "beat_index": np.arange(n_beats, dtype=np.int64),
        "beat_time": track.grid.beat_times.astype(np.float64),
    }
    columns.update({name: track.features[:, i] for i, name in enumerate(track.names)})
    meta = dict(track.meta, duration_sec=track.grid.duration_sec, cache_key=key)
    table = pa.table(columns).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_table(path: str | Path) -> TrackFeatures:
    """Read a table written by :func:`write_table`.

    Raises:
        DatasetError: unreadable, or not an editorbot feature table.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DatasetError(f"{path}: not a readable Parquet file ({e}); re-run `features`") from e
    raw = (table.schema.metadata or {}).get(META_KEY)
    names = [n for n in table.column_names if n not in ("beat_index", "beat_time")]
    if raw is None or table.column_names[:2] != ["beat_index", "beat_time"]:
        raise DatasetError(f"{path}: not an editorbot feature table; re-run `editorbot features`")
    meta = json.loads(raw)
    grid = BeatGrid(
        beat_times=table.column("beat_time").to_numpy().astype(np.float64),
        tempo_bpm=float(meta["tempo"]),
        downbeat_phase=int(meta["downbeat_phase"]),
        duration_sec=float(meta["duration_sec"]),
    )
    features = np.stack([table.column(n).to_numpy() for n in names], axis=1).astype(np.float32)
    return TrackFeatures(grid=grid, features=features, names=tuple(names), meta=meta)


def check_compatible(tables: Sequence[TrackFeatures], *, names: Sequence[str] = ()) -> None:
    """Refuse to mix tables with and without stems, or of different feature versions/columns.

    Args:
        tables: the tables to be used together (training set, or training + inference).
        names: where each table came from, for the message (defaults to ``meta['source']``).

    Raises:
        DatasetError: naming one table of each kind and the fix.
    """
    if not tables:
        return
    labels = list(names) or [str(t.meta.get("source", f"table {i}")) for i, t in enumerate(tables)]
    first, first_label = tables[0], labels[0]
    for table, label in zip(tables[1:], labels[1:], strict=True):
        if table.has_stems != first.has_stems:
            with_stems, without = (label, first_label) if table.has_stems else (first_label, label)
            raise DatasetError(
                f"{with_stems} has stem features but {without} does not; stem columns would be "
                "mixed with zeros — re-run `editorbot features` on all tracks with the same "
                "--stems-dir setting"
            )
        if table.meta.get("feature_version") != first.meta.get("feature_version"):
            raise DatasetError(
                f"{label} has feature version {table.meta.get('feature_version')!r} but "
                f"{first_label} has {first.meta.get('feature_version')!r}; re-run "
                "`editorbot features` on all tracks"
            )
        if table.names != first.names:
            raise DatasetError(
                f"{label} and {first_label} have different feature columns; re-run "
                "`editorbot features` on all tracks"
            )


def analyze_cached(
    audio: Audio,
    config: ExtractConfig,
    *,
    cache_dir: str | Path | None = None,
    stems_dir: str | Path | None = None,
    demucs_dir: str | Path | None = None,
) -> tuple[TrackFeatures, str, bool]:
    """Analyse ``audio``, reading/writing ``cache_dir/<key>.parquet`` when a cache is given.

    Stem sources are as in :func:`editorbot.audio.analysis.analyze`; separated stems are cached
    under ``cache_dir/stems``.

    Returns:
        (the table, its cache key, whether it came from the cache).
    """
    stems_id = stems_identity(audio, stems_dir=stems_dir, demucs_dir=demucs_dir)
    key = cache_key(audio, config, stems_id=stems_id)
    cached = Path(cache_dir) / f"{key}.parquet" if cache_dir is not None else None
    if cached is not None and cached.exists():
        try:
            track = read_table(cached)
        except DatasetError as e:
            logger.warning("ignoring a bad cache entry: %s", e)
        else:
            track.meta["source"] = audio.name()
            return track, key, True
    track = analyze(
        audio,
        audio_config=config.audio,
        beat_config=config.beats,
        feature_config=config.features,
        stems_dir=stems_dir,
        demucs_dir=demucs_dir,
        stems_cache_dir=Path(cache_dir) / "stems" if cache_dir is not None else None,
    )
    if cached is not None:
        write_table(track, cached, key=key)
    return track, key, False


@dataclass(frozen=True)
class FileResult:
    """What happened to one input file.

    Attributes:
        source: the audio file.
        out: the table written, or None on failure.
        error: one line naming the file and the fix, or None on success.
        cached: the table came from the cache.
    """

    source: Path
    out: Path | None
    error: str | None = None
    cached: bool = False


def extract_file(
    source: str | Path,
    out_dir: str | Path,
    config: ExtractConfig,
    *,
    cache_dir: str | Path | None = None,
    stems_dir: str | Path | None = None,
    demucs_dir: str | Path | None = None,
) -> FileResult:
    """Load, analyse (or fetch from the cache) and write ``out_dir/<name>.parquet``.

    Raises:
        EditorbotError: bad audio, too few beats, stems missing.
    """
    source = Path(source)
    audio = load_audio(source, config=config.audio)
    track, key, cached = analyze_cached(
        audio, config, cache_dir=cache_dir, stems_dir=stems_dir, demucs_dir=demucs_dir
    )
    out = write_table(track, output_path(source, out_dir), key=key)
    return FileResult(source=source, out=out, cached=cached)


def output_path(source: str | Path, out_dir: str | Path) -> Path:
    """``out_dir/<name>.parquet`` for an input file."""
    return Path(out_dir) / f"{Path(source).stem}.parquet"


def check_unique_outputs(paths: Sequence[Path], out_dir: str | Path) -> None:
    seen: dict[Path, Path] = {}
    for p in paths:
        out = output_path(p, out_dir)
        if out in seen:
            raise ParameterError(
                f"{p} and {seen[out]} would both write {out}; rename one or run them separately"
            )
        seen[out] = p
