"""The import graph, read from the source with ``ast``: no module imports itself in a circle (at
module level or inside a function), and ``audio/`` (signal in, grid and features out) imports
nothing from ``editing/``."""

from __future__ import annotations

import ast
from pathlib import Path

import editorbot

PACKAGE = Path(editorbot.__file__).parent


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported dotted name lives in (``a.b.c`` may be a name in ``a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports(path: Path, root: Path, *, top_level_only: bool) -> set[str]:
    """Modules of package ``root`` that ``path`` imports: at module level (including under
    ``if TYPE_CHECKING:`` and ``try:``), or anywhere (imports inside functions too)."""
    modules = _modules(root)
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    if top_level_only:
        nodes = [n for stmt in tree.body for n in ast.walk(stmt) if not _in_def(stmt, n)]
    else:
        nodes = list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found |= {m for t in targets if (m := _resolve(t, modules)) is not None}
    return found


def _in_def(stmt: ast.stmt, node: ast.AST) -> bool:
    """Whether ``node`` sits inside a function or class body of module-level ``stmt``."""
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    return any(
        node in ast.walk(child)
        for child in ast.walk(stmt)
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as the list of modules around it), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def _graph(root: Path, *, top_level_only: bool) -> dict[str, set[str]]:
    graph = {m: imports(p, root, top_level_only=top_level_only) for m, p in _modules(root).items()}
    # A package's __init__ runs before its submodules, but editorbot's are empty: an edge
    # from a module to its own package says nothing about the order modules load in.
    return {m: {t for t in ts if t != m and not m.startswith(t + ".")} for m, ts in graph.items()}


def test_no_module_imports_itself_in_a_circle() -> None:
    # Imports inside functions count too: a lazy import that closes a circle hides it (the
    # modules still depend on each other) instead of removing it.
    cycle = find_cycle(_graph(PACKAGE, top_level_only=False))
    assert cycle is None, " -> ".join(cycle or [])


def test_audio_imports_nothing_from_editing() -> None:
    graph = _graph(PACKAGE, top_level_only=False)
    offenders = {
        (m, t)
        for m, targets in graph.items()
        if m.startswith("editorbot.audio.")
        for t in targets
        if t.startswith("editorbot.editing")
    }
    assert offenders == set(), sorted(offenders)


def test_the_checks_see_what_they_check(tmp_path: Path) -> None:
    # A check that cannot fail is no check: a two-module circle, one import at module level
    # and one inside a function, and a relative import.
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import x\n")
    (pkg / "b.py").write_text("import typing\nif typing.TYPE_CHECKING:\n    from . import a\n")
    (pkg / "c.py").write_text("def f():\n    from pkg import a\n")
    assert imports(pkg / "c.py", pkg, top_level_only=True) == set()
    assert imports(pkg / "c.py", pkg, top_level_only=False) == {"pkg.a"}
    assert find_cycle(_graph(pkg, top_level_only=True)) == ["pkg.a", "pkg.b", "pkg.a"]
