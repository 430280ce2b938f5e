"""Training pairs on disk: discovery and validation.

Layout (what the demo-data generator writes)::

    DIR/input/X_raw.<ext>            the raw track
    DIR/desired_output/X_edit.<ext>  the editor's finished edit of it
    DIR/reference/X_ref.<ext>        optional: another reference for X (``X.<ext>`` also works)

``<ext>`` is anything libsndfile reads (``editorbot.audio.io.AUDIO_EXTENSIONS``). Other files are
ignored and listed; a raw without an edit (or the reverse) is reported as unmatched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from editorbot.audio.io import AUDIO_EXTENSIONS, AudioConfig, load_audio
from editorbot.errors import AudioLoadError, DatasetError

logger = logging.getLogger(__name__)

INPUT_DIR, EDIT_DIR, REFERENCE_DIR = "input", "desired_output", "reference"
RAW_SUFFIX, EDIT_SUFFIX, REFERENCE_SUFFIX = "_raw", "_edit", "_ref"


@dataclass(frozen=True)
class Pair:
    """One raw track and its edit.

    Attributes:
        name: ``X`` in ``X_raw`` / ``X_edit``.
        raw: the raw track.
        edit: the edited track.
        reference: an optional reference track, or None.
    """

    name: str
    raw: Path
    edit: Path
    reference: Path | None = None


@dataclass(frozen=True)
class PairScan:
    """What a folder holds.

    Attributes:
        pairs: matched pairs, sorted by name.
        problems: one line per unmatched or ambiguous file (names the file and the fix).
        ignored: files that are not audio or not named ``*_raw`` / ``*_edit``.
    """

    pairs: tuple[Pair, ...]
    problems: tuple[str, ...] = ()
    ignored: tuple[Path, ...] = ()


def discover_pairs(root: str | Path) -> list[Pair]:
    """The matched pairs under ``root``.

    Raises:
        DatasetError: ``root`` or ``root/input`` missing, or no pair found.
    """
    scan = scan_pairs(root)
    if not scan.pairs:
        raise DatasetError(
            f"{root}: no (input/X_raw.*, desired_output/X_edit.*) pair found; "
            + (
                scan.problems[0]
                if scan.problems
                else "put raw tracks in input/, edits in desired_output/"
            )
        )
    return list(scan.pairs)


def scan_pairs(root: str | Path) -> PairScan:
    """Match raw, edit and reference files by name without reading them.

    Raises:
        DatasetError: ``root`` or one of its ``input/`` / ``desired_output/`` folders missing.
    """
    root = Path(root)
    for sub in ("", INPUT_DIR, EDIT_DIR):
        if not (root / sub).is_dir():
            raise DatasetError(
                f"{root / sub}: no such folder; expected {root}/{INPUT_DIR}/X_raw.wav and "
                f"{root}/{EDIT_DIR}/X_edit.wav"
            )
    raws, raw_problems, ignored = _by_name(root / INPUT_DIR, RAW_SUFFIX)
    edits, edit_problems, ignored_edit = _by_name(root / EDIT_DIR, EDIT_SUFFIX)
    refs, ref_problems, ignored_ref = _references(root / REFERENCE_DIR)
    problems = raw_problems + edit_problems + ref_problems
    for name in sorted(set(raws) - set(edits)):
        problems.append(f"{raws[name]}: no edit; expected {root / EDIT_DIR}/{name}_edit.*")
    for name in sorted(set(edits) - set(raws)):
        problems.append(f"{edits[name]}: no raw track; expected {root / INPUT_DIR}/{name}_raw.*")
    pairs = tuple(
        Pair(name, raws[name], edits[name], refs.get(name))
        for name in sorted(set(raws) & set(edits))
    )
    return PairScan(pairs, tuple(problems), tuple(ignored + ignored_edit + ignored_ref))


def _audio_files(folder: Path) -> tuple[list[Path], list[Path]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    audio = [p for p in files if p.suffix.lower() in AUDIO_EXTENSIONS]
    return audio, [p for p in files if p not in audio]


def _by_name(folder: Path, suffix: str) -> tuple[dict[str, Path], list[str], list[Path]]:
    """``{X: path}`` for files ``X<suffix>.<ext>``; duplicates become problems."""
    audio, ignored = _audio_files(folder)
    found: dict[str, Path] = {}
    problems: list[str] = []
    for path in audio:
        if not path.stem.endswith(suffix) or path.stem == suffix:
            ignored.append(path)
            continue
        name = path.stem[: -len(suffix)]
        if name in found:
            problems.append(f"{path}: {found[name].name} has the same name; keep one of them")
            continue
        found[name] = path
    return found, problems, ignored


def _references(folder: Path) -> tuple[dict[str, Path], list[str], list[Path]]:
    if not folder.is_dir():
        return {}, [], []
    audio, ignored = _audio_files(folder)
    found: dict[str, Path] = {}
    problems: list[str] = []
    for path in audio:
        name = path.stem.removesuffix(REFERENCE_SUFFIX) or path.stem
        if name in found:
            problems.append(f"{path}: {found[name].name} has the same name; keep one of them")
            continue
        found[name] = path
    return found, problems, ignored


@dataclass(frozen=True)
class FileInfo:
    """A file's audio properties, or why it is unusable.

    Attributes:
        path: the file.
        duration_sec: [s] length (0 when unreadable).
        sr: [Hz] sample rate (0 when unreadable).
        n_channels: channels (0 when unreadable).
        error: one line naming the file and the fix, or None.
    """

    path: Path
    duration_sec: float = 0.0
    sr: int = 0
    n_channels: int = 0
    error: str | None = None


@dataclass(frozen=True)
class PairCheck:
    """A pair with both files read and validated."""

    pair: Pair
    raw: FileInfo
    edit: FileInfo
    copy_floor_db: float | None = None
    """[dB] residual of the edit's closest copies of raw audio (see
    :func:`editorbot.editing.labels.prepare_pair`); None when a file is unreadable."""

    @property
    def ok(self) -> bool:
        return self.raw.error is None and self.edit.error is None

    @property
    def unrelated(self) -> str | None:
        """One line saying why the edit does not look made of its raw track, or None."""
        from editorbot.editing.labels import ExportConfig

        limit = ExportConfig().unrelated_floor_db
        if self.copy_floor_db is None or self.copy_floor_db <= limit:
            return None
        return (
            f"{self.pair.name}: the edit does not look made of its raw track (its closest "
            f"copies of the raw differ by {self.copy_floor_db:.1f} dB, as unrelated audio "
            f"does); check that {self.pair.edit.name} is the edit of {self.pair.raw.name}"
        )

    @property
    def duration_ratio(self) -> float:
        """[1] edit duration / raw duration (NaN when either is unreadable)."""
        return self.edit.duration_sec / self.raw.duration_sec if self.ok else float("nan")


@dataclass(frozen=True)
class DataReport:
    """The result of ``editorbot data check``."""

    root: Path
    scan: PairScan
    checks: tuple[PairCheck, ...] = field(default_factory=tuple)

    @property
    def valid_pairs(self) -> tuple[Pair, ...]:
        return tuple(c.pair for c in self.checks if c.ok)


def file_info(path: Path, *, config: AudioConfig | None = None) -> FileInfo:
    """Read and validate one file (see :func:`editorbot.audio.io.load_audio`)."""
    try:
        audio = load_audio(path, config=config)
    except AudioLoadError as e:
        return FileInfo(path=path, error=str(e))
    return FileInfo(path, audio.duration_sec, audio.sr, audio.n_channels)


def check_pairs(root: str | Path, *, config: AudioConfig | None = None) -> DataReport:
    """Discover the pairs under ``root`` and read every file of every pair.

    Raises:
        DatasetError: ``root`` or its ``input/`` / ``desired_output/`` folder missing.
    """
    scan = scan_pairs(root)
    checks = []
    for p in scan.pairs:
        c = PairCheck(p, file_info(p.raw, config=config), file_info(p.edit, config=config))
        checks.append(replace(c, copy_floor_db=_copy_floor_db(p, config)) if c.ok else c)
    return DataReport(root=Path(root), scan=scan, checks=tuple(checks))


def _copy_floor_db(pair: Pair, config: AudioConfig | None) -> float:
    """[dB] how closely the edit's best-matched windows copy the raw track, after the pair's
    export chain (about -120 for a renderer's edit, -20 to -35 for a lossy export, near 0 for
    audio that is not an edit of this raw track)."""
    from editorbot.editing.labels import ExportConfig, prepare_pair

    raw, edit = load_audio(pair.raw, config=config), load_audio(pair.edit, config=config)
    return prepare_pair(raw, edit, ExportConfig())[2].copy_floor_db
