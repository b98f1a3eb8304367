"""The layout ARCHITECTURE.md describes: engine modules import each other at module level, every arrow
points down the layers, nothing imports the CLI, no circle between modules or inside a package, and
ARCHITECTURE.md's import table is the code's.

`python tests/test_architecture.py` prints that table from the code.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "detect_cli"
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
NOT_IN_TABLE = {"cli", "__main__"}  # presentation: `cli` imports the engine inside its command bodies


def _dotted(path: Path) -> str:
    """detect_cli/sources/urls.py -> 'sources.urls'; a package's __init__.py is the package's name."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _targets(node: ast.ImportFrom) -> list[str]:
    """The detect_cli modules one `from detect_cli… import …` line names, dotted ('sources.urls',
    'compare' for the package's face); `from detect_cli.compare import bootstrap` names the module."""
    sub = node.module.removeprefix("detect_cli").lstrip(".") if node.module else ""
    if not sub:
        return [a.name for a in node.names]
    folder = PACKAGE.joinpath(*sub.split("."))
    if folder.is_dir():
        found = [f"{sub}.{a.name}" for a in node.names if (folder / f"{a.name}.py").is_file()]
        if len(found) == len(node.names):
            return found
        return [sub, *found]
    return [sub]


@functools.cache
def _imports() -> dict[str, set[str]]:
    """Each module's module-level imports of other detect_cli modules, by dotted name (imports inside
    functions and under `if TYPE_CHECKING:` are not module level)."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _dotted(path)
        if not name:  # detect_cli/__init__.py
            continue
        deps = found.setdefault(name, set())
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("detect_cli"):
                deps.update(t for t in _targets(node) if t != name)
    return {name: deps & set(found) for name, deps in found.items()}


@functools.cache
def _modules() -> dict[str, set[str]]:
    """The same imports keyed by top-level name: a package (`compare`, `sources`, `cli`) is one node,
    and imports inside a package are not layered."""
    top: dict[str, set[str]] = {}
    for name, deps in _imports().items():
        head = name.split(".")[0]
        top.setdefault(head, set()).update(d.split(".")[0] for d in deps)
    return {name: deps - {name} for name, deps in top.items()}


def _layer(name: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if name in layer)


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (as the path that closes it), or None."""
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*path, node, dep]
            if dep not in state and (found := visit(dep, [*path, node])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_import_points_down(name: str) -> None:
    for dep in _modules()[name]:
        assert _layer(dep) <= _layer(name), f"{name} (layer {_layer(name)}) imports {dep} ({_layer(dep)})"


def test_no_import_circle() -> None:
    circle = _circle(_modules())
    assert circle is None, "import circle: " + " -> ".join(circle or ())


PACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle_inside_a_package(package: str) -> None:
    """The modules of a package import each other directly (never through the package's face, which
    imports them all), and form no circle."""
    inside = {
        name: {d for d in deps if d == package or d.startswith(package + ".")}
        for name, deps in _imports().items()
        if name == package or name.startswith(package + ".")
    }
    circle = _circle(inside)
    assert circle is None, "import circle: " + " -> ".join(circle or ())


def test_the_circle_check_finds_a_circle() -> None:
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b"}, "b": set()}) is None


def table() -> str:
    """ARCHITECTURE.md's table of module-level imports between engine modules, from the code."""
    rows = ["| module | imports |", "|---|---|"]
    for name, deps in sorted(_imports().items()):
        if name.split(".")[0] in NOT_IN_TABLE:
            continue
        said = ", ".join(f"`{d}`" for d in sorted(deps)) or "—"
        rows.append(f"| `{name}` | {said} |")
    return "\n".join(rows) + "\n"


def test_architecture_md_table_is_the_code_s() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    found = re.search(r"^\| module \| imports \|\n(?:\|.*\n)+", text, re.MULTILINE)
    assert found, "ARCHITECTURE.md has no '| module | imports |' table"
    assert found.group(0) == table(), (
        "ARCHITECTURE.md's import table differs from the code: replace it with the output of "
        "`python tests/test_architecture.py`"
    )


if __name__ == "__main__":
    print(table(), end="")
