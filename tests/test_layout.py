"""STYLE.md's boundaries, checked on the source: Ray is imported only where it is the point."""

from __future__ import annotations

import ast
from pathlib import Path

import editorbot

PACKAGE = Path(editorbot.__file__).parent
RAY_ALLOWED = ("envs", "models", "training")
"""Sub-packages that may import ray (STYLE.md: registration, the RLModule wrapper, training)."""


def _ray_imports(path: Path) -> list[int]:
    """Line numbers of every ``import ray…`` / ``from ray… import`` in a module (any depth)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(n == "ray" or n.startswith("ray.") for n in names):
            lines.append(node.lineno)
    return lines


def test_ray_is_imported_only_under_envs_models_training() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in RAY_ALLOWED:
            continue
        offenders += [f"{rel}:{line}" for line in _ray_imports(path)]
    assert offenders == [], f"ray imported outside {RAY_ALLOWED}: {offenders}"


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    # The package imports Ray lazily inside functions; a check of top-level imports only
    # would pass whatever the code did.
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import ray.tune\n    from ray import train\n")
    assert _ray_imports(module) == [2, 3]
