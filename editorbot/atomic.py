"""Atomic file writes: write to a temporary file beside the target, fsync, then rename.

A reader never sees a half-written output, and an interrupted job leaves the old file intact.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically.

    Args:
        path: the final destination. Its parent folder is created.
        suffix: suffix of the temporary file (some writers pick the format from it);
            defaults to ``path``'s suffix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.",
        suffix=suffix if suffix is not None else path.suffix,
        dir=path.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; give the output the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


_RENAME_EXCHANGE = 2  # linux/fs.h: swap two paths in one step


def replace_dir(new: str | Path, path: str | Path) -> None:
    """Make the complete folder ``new`` appear at ``path`` in one atomic step.

    A folder cannot be renamed over a non-empty one, and two renames (old away, new in) leave
    nothing at ``path`` if the process dies between them. On Linux ``renameat2`` with
    ``RENAME_EXCHANGE`` swaps the two folders in one system call; the old contents, now at
    ``new``, are then deleted. When ``path`` does not exist yet, one plain rename suffices.

    Raises:
        OSError: the swap is not supported here (another OS or file system) or failed; then
            ``path`` still holds the old folder and ``new`` the new one.
    """
    import ctypes
    import shutil

    new, path = Path(new), Path(path)
    if not path.exists():
        os.rename(new, path)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(f"{path}: no atomic folder swap (renameat2) on this system")
    at_fdcwd = -100
    rc = renameat2(at_fdcwd, os.fsencode(new), at_fdcwd, os.fsencode(path), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot swap {new} and {path}: {os.strerror(err)}")
    shutil.rmtree(new, ignore_errors=True)
