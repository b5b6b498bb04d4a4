"""ganforge's modules import one way: no circle among its modules, nor among its parts (top-level modules
and sub-packages), counting imports inside functions too (a late import hides a circle, it does not end it)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ganforge"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The ganforge modules `source` (module `name`) imports, wherever in the file the import stands."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "ganforge"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ganforge":
                continue
            for alias in node.names:  # `from . import x` imports the module x; `from .m import f` imports m
                full = f"{target}.{alias.name}"
                found.add(full if full in modules else target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: imports_of(path.read_text(), name, path.name == "__init__.py", modules) - {name}
            for name, path in paths.items()}


def part(module: str) -> str:
    """ganforge.training.trainer → ganforge.training; ganforge.run → ganforge.run."""
    return ".".join(module.split(".")[:2])


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def parts_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges between parts; the package's own __init__ (version, load_run's lazy wrapper) is left out."""
    out: dict[str, set[str]] = {}
    for source, targets in graph.items():
        for target in targets:
            a, b = part(source), part(target)
            if a != b and "ganforge" not in (a, b):
                out.setdefault(a, set()).add(b)
    return out


def test_the_checker_finds_a_circle_and_a_late_import():
    modules = {"ganforge.a", "ganforge.b"}
    a = "def f():\n    from .b import g\n"  # inside a function: still an edge
    b = "from ganforge.a import f\n"
    graph = {"ganforge.a": imports_of(a, "ganforge.a", False, modules),
             "ganforge.b": imports_of(b, "ganforge.b", False, modules)}
    assert graph == {"ganforge.a": {"ganforge.b"}, "ganforge.b": {"ganforge.a"}}
    assert circles(graph) == [["ganforge.a", "ganforge.b"]]
    assert circles({"ganforge.a": {"ganforge.b"}, "ganforge.b": set()}) == []


def test_no_module_imports_itself_back():
    graph = import_graph()
    assert "ganforge.rundir" in graph["ganforge.run"]  # the graph is read, not empty
    assert not circles(graph), f"import circles among modules: {circles(graph)}"


def test_no_part_imports_itself_back():
    graph = parts_graph(import_graph())
    assert {"ganforge.training", "ganforge.metrics", "ganforge.rundir"} <= set(graph) | {
        b for targets in graph.values() for b in targets}
    assert not circles(graph), f"import circles among the package's parts: {circles(graph)}"
