"""The dependency pins: ``make`` installs requirements.lock, so every direct dependency in
pyproject.toml must be satisfied by it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_dependencies_are_pinned_in_lock() -> None:
    """`make` installs requirements.lock; pyproject must not ask for anything the lock lacks."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            lock[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    for spec in wanted:
        req = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in lock, f"{req.name} is in pyproject.toml but not in requirements.lock"
        version = lock[name].split("+")[0]
        assert req.specifier.contains(version, prereleases=True), (
            f"{req.name}: lock pins {lock[name]}, pyproject wants {req.specifier}"
        )
