"""The layout ARCHITECTURE.md describes: engine modules import each other at module level, every arrow
points down the layers, and nothing imports the CLI."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "detect_cli"
LAYERS = [
    {"errors", "results", "signals", "geometry"},
    {"sources", "models", "render", "tracking"},
    {"writers", "backends", "rundir", "runtime", "tracks", "quantize"},
    {"threads", "resume"},
    {"pipeline"},
    {"video", "executors"},
    {"jobs", "compare", "explain"},
    {"cli", "ui", "__main__"},
]


@functools.cache
def _modules() -> dict[str, set[str]]:
    """Each module's module-level imports of other detect_cli modules (top-level names: `compare`,
    `jobs`, `cli` stand for their packages; imports inside a package are not layered)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        name = rel.parts[0].removesuffix(".py")
        if name == "__init__":
            continue
        deps = found.setdefault(name, set())
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("detect_cli"):
                sub = node.module.removeprefix("detect_cli").lstrip(".")
                targets = [sub.split(".")[0]] if sub else [a.name for a in node.names]
                deps.update(t for t in targets if t != name)
    known = set(found)
    return {name: deps & known for name, deps in found.items()}


def _layer(name: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if name in layer)


@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_import_points_down(name: str) -> None:
    for dep in _modules()[name]:
        assert _layer(dep) <= _layer(name), f"{name} (layer {_layer(name)}) imports {dep} ({_layer(dep)})"


def test_no_import_circle() -> None:
    graph = _modules()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            assert state.get(dep) != 1, "import circle: " + " -> ".join([*path, node, dep])
            if dep not in state:
                visit(dep, [*path, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])
