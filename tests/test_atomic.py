"""Atomic outputs: an interrupted write keeps the old file and leaves no temporary behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from editorbot.atomic import atomic_path, write_text_atomic


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary left behind
