"""Dependencies go one way: no import cycles anywhere in the package, and task modules use core types only.

Read from the source with ``ast`` (every import statement, at module level or inside a function, except those
under ``if TYPE_CHECKING:``), so a cycle hidden behind a lazy import inside a function counts as one; importing
``pkg.mod`` counts as importing ``pkg`` too, since it runs ``pkg/__init__.py``.
"""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

# source folder -> the import name it is installed under (pyproject.toml maps tasks/ into benchmark)
PACKAGES = {"benchmark": "benchmark", "tasks": "benchmark.tasks"}
# what a task module may use from the rest of the suite: core types and leaf utilities, never pipeline code
TASK_MAY_IMPORT = {"benchmark", "benchmark.errors", "benchmark.resources", "benchmark.checksums",
                   "benchmark.targets", "benchmark.processes", "benchmark.kinds", "benchmark.kinds.base",
                   "benchmark.schema", "benchmark.wheel_assets"}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in (REPO_ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(REPO_ROOT / folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def _imported_names(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        edges = set()
        for imported in _imported_names(name, path):
            while imported and imported not in modules:  # `from pkg.mod import obj` -> pkg.mod
                imported = imported.rpartition(".")[0]
            while imported:  # importing pkg.mod first runs pkg/__init__.py: an edge to every parent package
                if imported != name and not name.startswith(imported + "."):
                    edges.add(imported)
                imported = imported.rpartition(".")[0]
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back():
    graph = _graph()
    assert len(graph) > 40 and "benchmark.runner" in graph and "benchmark.tasks.gtzan" in graph
    assert _cycles(graph) == []


def test_task_modules_depend_on_core_types_only():
    offending = {name: sorted(d for d in deps if not d.startswith("benchmark.tasks") and d not in TASK_MAY_IMPORT)
                 for name, deps in _graph().items() if name.startswith("benchmark.tasks")}
    assert {k: v for k, v in offending.items() if v} == {}
