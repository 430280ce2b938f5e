"""Where a run's results live: a local folder, a folder every node mounts, or an object store.

A *location* is either a path (``models/rl``, ``/mnt/shared/rl``) or a URI that ``pyarrow.fs``
reads, as Ray Train and Tune do: ``s3://BUCKET/run``, ``gs://BUCKET/run``, ``file:///abs/run``.
A path is used as it is, so on one machine nothing changes. Through a URI a run writes in a local
staging folder and pushes each finished artefact (``best/``, ``progress.jsonl``) to the location;
Ray's own writers (RLlib checkpoints, Tune results) write to the URI directly, from whichever node
they run on.

S3 follows the standard variables, so one command works against AWS, MinIO or a test server:
``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``), ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` and ``AWS_DEFAULT_REGION`` (or ``AWS_REGION``).
Unset keys fall back to the AWS SDK's own chain (instance profile, ``~/.aws``).

How to run::

    check_writable("s3://bucket/run")           # one StorageError line if it cannot be used
    upload_dir(Path("best"), "s3://bucket/run/best", last="editorbot_checkpoint.json")
    local = local_copy("s3://bucket/run/best")   # a fresh local copy to load from
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from editorbot.atomic import replace_dir
from editorbot.errors import EditorbotError

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class StorageError(EditorbotError):
    """A storage location that cannot be parsed, reached or written, or that lacks a file."""


def is_uri(location: str | Path) -> bool:
    """``s3://b/x``, ``gs://b/x``, ``file:///x`` (a URI); a plain path is not one."""
    return isinstance(location, str) and bool(_URI.match(location))


def as_location(text: str) -> str | Path:
    """An argparse ``type``: a URI stays a string (``Path`` would turn ``s3://b`` into
    ``s3:/b``), anything else becomes a ``Path``."""
    return text if is_uri(text) else Path(text)


def join(location: str | Path, *parts: str) -> str | Path:
    """``location/part/...`` for a URI or a path."""
    if is_uri(location):
        return "/".join([str(location).rstrip("/"), *parts])
    return Path(location, *parts)


def filesystem(location: str | Path) -> tuple[Any, str]:
    """(``pyarrow.fs.FileSystem``, path inside it) for ``location``.

    Raises:
        StorageError: an S3 URI without a bucket, or a scheme ``pyarrow.fs`` does not know.
    """
    import pyarrow.fs as pafs

    if not is_uri(location):
        return pafs.LocalFileSystem(), str(Path(location).resolve())
    text = str(location)
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StorageError(f"{text}: no bucket name; write s3://BUCKET/path")
        return pafs.S3FileSystem(**s3_options()), f"{parsed.netloc}{parsed.path}".rstrip("/")
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except Exception as e:  # pyarrow raises ArrowInvalid / ArrowNotImplementedError / OSError
        raise StorageError(f"{text}: not a location pyarrow.fs can open ({_first(e)})") from e
    return fs, str(path).rstrip("/") or "/"


def ray_storage(location: str | Path) -> tuple[str, Any]:
    """(``storage_path``, ``storage_filesystem``) for a Ray Tune / Train ``RunConfig``: an
    absolute path and None for a path; for a URI the path inside the filesystem and the
    filesystem itself (built here, so S3 follows the AWS variables as everywhere in editorbot;
    Ray ships it to whichever node writes)."""
    if not is_uri(location):
        return str(Path(location).resolve()), None
    fs, path = filesystem(location)
    return path, fs


def s3_options() -> dict[str, Any]:
    """``pyarrow.fs.S3FileSystem`` keywords from the standard AWS variables (those set)."""
    options: dict[str, Any] = {"connect_timeout": 10.0}  # [s] an unreachable endpoint fails fast
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["endpoint_override"] = parsed.netloc
        options["scheme"] = parsed.scheme
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    if region:
        options["region"] = region
    for key, var in (
        ("access_key", "AWS_ACCESS_KEY_ID"),
        ("secret_key", "AWS_SECRET_ACCESS_KEY"),
        ("session_token", "AWS_SESSION_TOKEN"),
    ):
        if os.environ.get(var):
            options[key] = os.environ[var]
    return options


def check_writable(location: str | Path) -> None:
    """Write and delete a probe file under ``location`` (creating its folder).

    Raises:
        StorageError: one line naming ``location``: unreachable endpoint, missing bucket, no
            write access.
    """
    fs, path = filesystem(location)
    probe = f"{path}/.editorbot-write-probe-{uuid.uuid4().hex}"
    try:
        fs.create_dir(path, recursive=True)
        with fs.open_output_stream(probe) as f:
            f.write(b"editorbot")
        fs.delete_file(probe)
    except Exception as e:  # OSError / ArrowException from any filesystem
        fix = (
            "check the bucket, AWS_ENDPOINT_URL and the credentials (they need write access), "
            "or pass a folder every node of the cluster can write"
            if is_uri(location)
            else "pass a folder this user can create and write"
        )
        raise StorageError(f"{location}: cannot write there ({_first(e)}); {fix}") from e


def exists(location: str | Path) -> bool:
    """Whether a file or folder is at ``location``."""
    import pyarrow.fs as pafs

    fs, path = filesystem(location)
    try:
        return bool(fs.get_file_info(path).type != pafs.FileType.NotFound)
    except Exception as e:
        raise StorageError(f"{location}: cannot be read ({_first(e)})") from e


def upload_dir(local: Path, location: str | Path, *, last: str | None = None) -> None:
    """Replace the folder at ``location`` with a copy of ``local``.

    Object stores have no folder rename, so the swap is atomic-ish: the old contents are removed
    first and ``last`` (the file a reader checks for, e.g. the checkpoint description) is written
    after every other file. A reader then sees the old folder, an incomplete one without
    ``last`` (refused as incomplete), or the new one; never a mix.
    """
    fs, dest = filesystem(location)
    try:
        fs.delete_dir_contents(dest, missing_dir_ok=True)
        files = sorted(p for p in local.rglob("*") if p.is_file())
        files.sort(key=lambda p: p.relative_to(local).as_posix() == last)  # `last` goes last
        for file in files:
            target = f"{dest}/{file.relative_to(local).as_posix()}"
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with file.open("rb") as src, fs.open_output_stream(target) as out:
                shutil.copyfileobj(src, out, length=1 << 20)
    except StorageError:
        raise
    except Exception as e:
        raise StorageError(f"{location}: upload of {local} failed ({_first(e)})") from e


def upload_file(local: Path, location: str | Path) -> None:
    """Copy the file ``local`` to ``location`` (one object: replaced whole)."""
    fs, dest = filesystem(location)
    try:
        fs.create_dir(dest.rsplit("/", 1)[0], recursive=True)
        with local.open("rb") as src, fs.open_output_stream(dest) as out:
            shutil.copyfileobj(src, out, length=1 << 20)
    except Exception as e:
        raise StorageError(f"{location}: upload of {local} failed ({_first(e)})") from e


def download_dir(location: str | Path, local: Path, *, require: str | None = None) -> Path:
    """Copy the folder at ``location`` to ``local`` (replacing it once complete).

    Raises:
        StorageError: nothing at ``location``, it cannot be read, or ``require`` (a relative
            file name) is missing from it (an upload in progress or an interrupted one).
    """
    import pyarrow.fs as pafs

    fs, src = filesystem(location)
    try:
        infos = fs.get_file_info(pafs.FileSelector(src, recursive=True, allow_not_found=True))
    except Exception as e:
        raise StorageError(f"{location}: cannot be read ({_first(e)})") from e
    files = [i for i in infos if i.type == pafs.FileType.File]
    if not files:
        raise StorageError(f"{location}: nothing there; pass a folder a run wrote (SAVE_DIR/best)")
    names = {i.path[len(src) :].lstrip("/") for i in files}
    if require is not None and require not in names:
        raise StorageError(f"{location}: no {require} (an upload in progress or interrupted)")
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{local.name}.", dir=local.parent))
    try:
        for info in files:
            target = tmp / info.path[len(src) :].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(info.path) as inp, target.open("wb") as out:
                shutil.copyfileobj(inp, out, length=1 << 20)
        replace_dir(tmp, local)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(f"{location}: download failed ({_first(e)})") from e
    return local


def cache_root() -> Path:
    """``$EDITORBOT_CACHE`` or ``~/.cache/editorbot``: local copies of remote locations."""
    root = os.environ.get("EDITORBOT_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "editorbot"
    )
    return Path(root)


def _cache_dir(kind: str, location: str | Path) -> Path:
    key = hashlib.sha256(str(location).encode()).hexdigest()[:16]
    return cache_root() / kind / key


def local_copy(location: str | Path, *, require: str | None = None) -> Path:
    """A local folder holding what is at ``location``: the path itself, or for a URI a fresh
    download into the cache (``cache_root()/storage/<hash>``), which the loaders then read with
    their usual checks."""
    if not is_uri(location):
        return Path(location)
    return download_dir(location, _cache_dir("storage", location), require=require)


@dataclass(frozen=True)
class RunStorage:
    """A run folder: ``local`` is where the run writes; ``location`` is where results go."""

    location: str | Path
    local: Path

    @classmethod
    def open(cls, location: str | Path, *, fresh: bool = False) -> RunStorage:
        """Check ``location`` can be written (see :func:`check_writable`; a path too, which
        creates its folder); for a URI the local staging folder is ``cache_root()/runs/<hash>``
        (kept, so ``--resume`` finds it; emptied first with ``fresh``: a new run of the same
        URI must not append to an earlier run's files)."""
        check_writable(location)
        if not is_uri(location):
            return cls(location, Path(location))
        local = _cache_dir("runs", location)
        if fresh:
            shutil.rmtree(local, ignore_errors=True)
        local.mkdir(parents=True, exist_ok=True)
        return cls(location, local)

    @property
    def remote(self) -> bool:
        """Whether results must be pushed (the location is a URI, not the local folder)."""
        return is_uri(self.location)

    def uri(self, *parts: str) -> str:
        """``location/parts`` as a string Ray accepts (a URI, or an absolute path)."""
        if self.remote:
            return str(join(self.location, *parts))
        return str(Path(self.local, *parts).resolve())

    def push(self, relative: str, *, last: str | None = None) -> None:
        """Copy ``local/relative`` (a file or folder) to ``location/relative``; no-op for a path."""
        if not self.remote:
            return
        source = self.local / relative
        if source.is_dir():
            upload_dir(source, join(self.location, relative), last=last)
        elif source.is_file():
            upload_file(source, join(self.location, relative))

    def pull(self, relative: str) -> bool:
        """Copy ``location/relative`` (a file or folder) into ``local``; False if absent."""
        if not self.remote:
            return (self.local / relative).exists()
        remote = join(self.location, relative)
        if not exists(remote):
            return False
        import pyarrow.fs as pafs

        fs, path = filesystem(remote)
        if fs.get_file_info(path).type == pafs.FileType.Directory:
            download_dir(remote, self.local / relative)
        else:
            target = self.local / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(path) as inp, target.open("wb") as out:
                shutil.copyfileobj(inp, out)
        return True


def _first(error: BaseException) -> str:
    """The first line of an error's message (pyarrow's carry AWS detail on later lines)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
