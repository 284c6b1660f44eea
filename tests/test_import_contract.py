"""The layer rules of docs/architecture (issue 26), checked over the source's import statements.

Every `import` and `from ... import` in mien/ is read with the ast module (inside functions
too: an import deferred into a function is still a dependency), resolved to the module of
the package it names, and checked against two rules:

- no cycle between modules;
- a module imports only its own layer or lower ones: files -> indexer -> engine -> store
  <- server <- web, with the clients beside them, seeing only the base modules.

Generated protobuf modules (mien/v1) are base modules like mien.errors.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "mien"

# Lowest first. A module's layer is the longest prefix of its name found here.
LAYERS: dict[str, int] = {
    "mien": 0,  # the package's own __init__ (its version)
    "mien.errors": 0,
    "mien.filenames": 0,
    "mien.v1": 0,
    "mien.native": 0,
    "mien.results": 0,
    "mien.engine": 0,  # mien/engine/__init__.py only; its packages have layers of their own
    "mien.engine.npz": 0,
    "mien.engine.faces": 1,
    "mien.engine.store": 2,
    "mien.engine.analytics": 3,
    "mien.indexer": 4,
    "mien.training": 4,
    "mien.server": 5,
    "mien.web": 6,
    "mien.cli": 9,
    "mien.__main__": 9,
    "mien.demo": 9,
}
CLIENTS = "mien.clients"  # a column of its own: base modules only, and only the top imports it
TOP = 9


def module_files() -> dict[str, Path]:
    files = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of mien that `name` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule; `from mod import name` the module
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {name: imported_modules(name, path, known) for name, path in files.items()}


def layer_of(module: str) -> tuple[str, int]:
    """(the layer's package, its rank); the clients get rank -1 as a marker."""
    if module == CLIENTS or module.startswith(CLIENTS + "."):
        return CLIENTS, -1
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    if best == "mien.engine" and module != "mien.engine":
        raise AssertionError(f"{module} is in no layer: add its package to LAYERS")
    if best == "mien" and module != "mien":
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return best, LAYERS[best]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    broken = []
    for source, targets in graph.items():
        source_layer, source_rank = layer_of(source)
        for target in targets:
            target_layer, target_rank = layer_of(target)
            if source_layer == target_layer:
                continue
            if target_rank == -1:
                allowed = source_rank == TOP
            elif source_rank == -1:
                allowed = target_rank == 0
            else:
                allowed = target_rank < source_rank or source_rank == TOP
            if not allowed:
                broken.append(f"{source} ({source_layer}) imports {target} ({target_layer})")
    return sorted(broken)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def test_no_layer_imports_a_higher_one():
    assert upward_imports(import_graph()) == []


def test_the_checks_see_a_cycle_and_an_upward_import():
    # the rules themselves: a made-up graph with one of each is caught
    graph = {
        "mien.engine.faces.a": {"mien.engine.faces.b"},
        "mien.engine.faces.b": {"mien.engine.faces.a", "mien.server.app"},
        "mien.server.app": set(),
        "mien.clients.x": {"mien.errors"},
        "mien.errors": set(),
    }
    assert cycles(graph) == [["mien.engine.faces.a", "mien.engine.faces.b"]]
    assert upward_imports(graph) == [
        "mien.engine.faces.b (mien.engine.faces) imports mien.server.app (mien.server)"]
    assert upward_imports({"mien.clients.x": {"mien.engine.store.store"},
                           "mien.engine.store.store": set()}) != []
    assert upward_imports({"mien.indexer.cli": {"mien.clients.cli_query"},
                           "mien.clients.cli_query": set()}) != []
