"""Arrows point down: no import cycle between the packages of `src/filestore`, and the leaf
packages (db, settings, storage, jobs) never reach a domain.

Pure and fast: the source is parsed with `ast`, nothing is imported. Every `import` counts,
also those inside functions and under `if TYPE_CHECKING:`.

A unit is a subpackage (`auth`, `files`, ...) or a top-level module (`deps`, `main`, ...).
A package's routers (`router.py`, `*_router.py`) are a unit of their own: routers are the
HTTP layer above `deps` (which loads the current user through `auth`), and only `main`
includes them, so `audit`'s router may use `deps` while `auth` records audit events without
that being a cycle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "filestore"
DOMAINS = frozenset({"audit", "auth", "customers", "files", "imports", "tickets"})
LEAVES = ("db", "settings", "storage", "jobs")

Graph = dict[str, dict[str, set[str]]]  # unit -> imported unit -> files where it happens


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str | None:
    """`filestore.auth.service` -> `auth`; `filestore.files.router` and
    `filestore.files.direct_router` -> `files.router`; `filestore.deps` -> `deps`; the package
    itself -> None."""
    parts = module.split(".")
    if parts[0] != "filestore" or len(parts) == 1:
        return None
    package = parts[1]
    is_router = len(parts) >= 3 and (parts[2] == "router" or parts[2].endswith("_router"))
    if is_router and (SOURCE / package).is_dir():
        return f"{package}.router"
    return package


def is_unit(unit: str) -> bool:
    path = SOURCE / unit.replace(".", "/")
    return path.is_dir() or path.with_suffix(".py").is_file()


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # `from filestore import worker` imports the module `filestore.worker`.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("filestore.")}


def build_graph() -> Graph:
    graph: Graph = defaultdict(lambda: defaultdict(set))
    for path in sorted(SOURCE.rglob("*.py")):
        module = module_name(path)
        source = unit_of(module)
        if source is None:
            continue
        graph[source]  # every unit is a node, even one that imports nothing
        tree = ast.parse(path.read_text(), filename=str(path))
        for target_module in imported_modules(tree, module, path.name == "__init__.py"):
            target = unit_of(target_module)
            if target is None or target == source:
                continue
            if not is_unit(target):
                continue  # a name, not a module: `from filestore import __version__`
            graph[source][target].add(str(path.relative_to(SOURCE)))
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: Graph, start: str) -> dict[str, list[str]]:
    """Every unit reachable from `start`, with one import path to it."""
    paths = {start: [start]}
    todo = [start]
    while todo:
        node = todo.pop()
        for nxt in graph.get(node, {}):
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                todo.append(nxt)
    return paths


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build_graph()


class TestImportGraph:
    def test_the_graph_sees_the_known_arrows(self, graph: Graph) -> None:
        # The walk itself works: a few arrows that must exist, and routers as their own units.
        assert "db" in graph["customers"]
        assert "customers" in graph["tickets"]
        assert "deps" in graph["auth.router"]
        assert "auth.router" in graph["main"]

    def test_no_cycle_between_packages(self, graph: Graph) -> None:
        described = []
        for component in cycles(graph):
            members = set(component)
            edges = [
                f"  {source} -> {target} ({', '.join(sorted(files))})"
                for source in component
                for target, files in sorted(graph[source].items())
                if target in members
            ]
            described.append("cycle " + " / ".join(component) + ":\n" + "\n".join(edges))
        assert not described, "\n".join(described)

    @pytest.mark.parametrize("leaf", LEAVES)
    def test_leaf_reaches_no_domain(self, graph: Graph, leaf: str) -> None:
        paths = reachable(graph, leaf)
        reached = {unit: path for unit, path in paths.items() if unit.split(".")[0] in DOMAINS}
        assert not reached, {unit: " -> ".join(path) for unit, path in reached.items()}

    def test_only_main_includes_routers(self, graph: Graph) -> None:
        importers = {
            source: sorted(target for target in targets if target.endswith(".router"))
            for source, targets in graph.items()
            if source != "main"
        }
        assert not {source: found for source, found in importers.items() if found}

    def test_cycle_finder_finds_a_cycle(self) -> None:
        fake: Graph = {
            "a": {"b": {"a.py"}},
            "b": {"c": {"b.py"}},
            "c": {"a": {"c.py"}},
            "d": {"a": {"d.py"}},
        }
        assert cycles(fake) == [["a", "b", "c"]]
