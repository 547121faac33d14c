"""The architecture checks of issue 16: the layer list (the one place it is written), no import cycles,
no import from a lower layer into a higher one, no module over 400 lines, no ``__getattr__`` forwarding.

The checks read the source with :mod:`ast`; nothing is imported. Module-level and function-level imports
both count; imports inside an ``if TYPE_CHECKING:`` block are ignored (they never run).

Known violations that another change is removing sit in the ``KNOWN_*`` allow-lists below, each with the
helper fixing it. An entry that no longer matches anything fails the test too, so the lists only shrink.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

PACKAGE = "streamtrt"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
MAX_LINES = 400

# The layers, bottom up. A module may import from its own layer or a lower one, never from a higher one.
# Names are the first component under streamtrt/ (a module or a package); "__init__" is streamtrt/__init__.py.
LAYERS: dict[int, tuple[str, ...]] = {
    0: ("errors", "config", "tensors", "redact", "registry", "retry", "system", "hardware", "jetson",
        "fileio", "model_info", "signals", "sync", "version"),
    1: ("sources", "preprocess", "engine", "postprocess"),
    2: ("track", "analytics", "sinks", "model_setup", "names", "calibration_data"),
    3: ("runtime",),
    4: ("cli", "bench", "bench_streams", "soak", "doctor", "service", "jobfile", "cluster", "__init__",
        "__main__"),
}
LAYER_NAMES = {0: "base", 1: "stages", 2: "composition", 3: "runtime", 4: "front"}

# Known violations, each naming the change that removes it (empty: none are allowed today).
# Import cycles: (importer, imported) edges left out of the graph before looking for cycles.
KNOWN_CYCLE_EDGES: dict[tuple[str, str], str] = {
    # (none today)
}
# Upward imports: (importer module or package prefix, imported module or package prefix).
KNOWN_UPWARD: dict[tuple[str, str], str] = {
    # (none today)
}
# Modules over MAX_LINES lines.
KNOWN_LONG: dict[str, str] = {
    # (none today)
}
# Modules defining __getattr__ (forwarding hides the interface).
KNOWN_GETATTR: dict[str, str] = {
    # (none today)
}


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    imported: str  # dotted module name (the most specific streamtrt module the statement names)
    path: str      # file, relative to the repository root
    line: int


def _module_files() -> dict[str, Path]:
    files = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


MODULES = _module_files()


def _rel(path: Path) -> str:
    return path.relative_to(ROOT.parent).as_posix()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node``, skipping the body (not the ``else``) of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for sub in child.orelse:
                yield sub
                yield from _statements(sub)
            continue
        yield child
        yield from _statements(child)


def _known(name: str) -> Optional[str]:
    """The most specific streamtrt module ``name`` is or lies in (``a.b.C`` -> ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> Iterator[Import]:
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in _statements(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                drop = node.level - 1 if is_package else node.level
                base = base[:len(base) - drop] if drop else base
                prefix = ".".join(base)
                source = f"{prefix}.{node.module}" if node.module else prefix
            else:
                source = node.module or ""
            # ``from pkg import mod`` imports the submodule; ``from mod import name`` the module.
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                       for alias in node.names]
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                resolved = _known(target)
                if resolved is not None and resolved != module:
                    yield Import(module, resolved, _rel(path), node.lineno)


ALL_IMPORTS = [imp for module, path in MODULES.items() for imp in _imports(module, path)]


def layer_of(module: str) -> int:
    """The layer of a dotted streamtrt module name; KeyError for a top-level name missing from LAYERS."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for level, names in LAYERS.items():
        if top in names:
            return level
    raise KeyError(top)


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle path (first node repeated at the end) per strongly connected component (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            comp = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                comp.append(top)
                if top == node:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for node in sorted(edges):
        if node not in index:
            visit(node)

    paths = []
    for comp in components:
        members = set(comp)
        start = comp[0]
        # Breadth-first from start back to start inside the component: the shortest cycle through it.
        parent: dict[str, str] = {}
        frontier = [start]
        found = None
        while frontier and found is None:
            nxt_frontier = []
            for node in frontier:
                for nxt in sorted(edges.get(node, ())):
                    if nxt not in members:
                        continue
                    if nxt == start:
                        found = node
                        break
                    if nxt not in parent:
                        parent[nxt] = node
                        nxt_frontier.append(nxt)
                if found is not None:
                    break
            frontier = nxt_frontier
        path = [start]
        node = found
        while node is not None and node != start:
            path.append(node)
            node = parent.get(node)
        paths.append([start] + path[1:][::-1] + [start])
    return paths


def _graph(skip: set[tuple[str, str]]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for imp in ALL_IMPORTS:
        if (imp.importer, imp.imported) not in skip:
            edges.setdefault(imp.importer, set()).add(imp.imported)
    return edges


def test_every_module_has_a_layer():
    missing = sorted({m for m in MODULES if m != PACKAGE and _layer_or_none(m) is None})
    assert not missing, "add these to LAYERS in tests/test_architecture.py: " + ", ".join(missing)


def _layer_or_none(module: str) -> Optional[int]:
    try:
        return layer_of(module)
    except KeyError:
        return None


def test_the_checks_see_imports():
    """Guards the checks themselves: relative, absolute, function-level and TYPE_CHECKING imports."""
    pairs = {(i.importer, i.imported) for i in ALL_IMPORTS}
    assert ("streamtrt.__main__", "streamtrt.cli") in pairs
    assert ("streamtrt.analytics.counters", "streamtrt.postprocess.detections") in pairs
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    code = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .x import A\nelse:\n    import y\n"
            "def f():\n    import z\n")
    names = [n.names[0].name for n in _statements(ast.parse(code)) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert names == ["TYPE_CHECKING", "y", "z"]


def test_no_import_cycles():
    known = set(KNOWN_CYCLE_EDGES)
    present = {(i.importer, i.imported) for i in ALL_IMPORTS}
    stale = sorted(known - present)
    cycles = _cycles(_graph(known))
    where = {(i.importer, i.imported): f"{i.path}:{i.line}" for i in ALL_IMPORTS}
    lines = []
    for cycle in cycles:
        hops = [f"{a} -> {b} ({where[(a, b)]})" for a, b in zip(cycle, cycle[1:])]
        lines.append("cycle: " + " | ".join(hops))
    lines += [f"stale KNOWN_CYCLE_EDGES entry (remove it): {a} -> {b}" for a, b in stale]
    # The allow-listed edges must still close a cycle; else the entry is stale too.
    for edge in sorted(known & present):
        if not any(edge[0] in c and edge[1] in c for c in _cycles(_graph(known - {edge}))):
            lines.append(f"KNOWN_CYCLE_EDGES entry no longer closes a cycle (remove it): {edge[0]} -> {edge[1]}")
    assert not lines, "\n".join(lines)


def test_no_upward_imports():
    lines = []
    used = set()
    for imp in ALL_IMPORTS:
        src, dst = _layer_or_none(imp.importer), _layer_or_none(imp.imported)
        if src is None or dst is None or dst <= src:
            continue
        allowed = [k for k in KNOWN_UPWARD if _matches(imp.importer, k[0]) and _matches(imp.imported, k[1])]
        if allowed:
            used.update(allowed)
            continue
        lines.append(f"{imp.path}:{imp.line}: {imp.importer} (L{src} {LAYER_NAMES[src]}) imports "
                     f"{imp.imported} (L{dst} {LAYER_NAMES[dst]})")
    lines += [f"stale KNOWN_UPWARD entry (remove it): {a} -> {b}" for a, b in sorted(set(KNOWN_UPWARD) - used)]
    assert not lines, "\n".join(lines)


def test_no_module_over_400_lines():
    lines = []
    for module, path in MODULES.items():
        rel = _rel(path)
        count = len(path.read_text().splitlines())
        if count > MAX_LINES and rel not in KNOWN_LONG:
            lines.append(f"{rel}: {count} lines (limit {MAX_LINES})")
        if count <= MAX_LINES and rel in KNOWN_LONG:
            lines.append(f"stale KNOWN_LONG entry (remove it): {rel} has {count} lines")
    lines += [f"stale KNOWN_LONG entry (remove it): {rel} does not exist" for rel in KNOWN_LONG
              if not (ROOT.parent / rel).exists()]
    assert not lines, "\n".join(lines)


def test_no_getattr_forwarding():
    lines = []
    seen = set()
    for module, path in MODULES.items():
        rel = _rel(path)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "__getattr__":
                seen.add(rel)
                if rel not in KNOWN_GETATTR:
                    lines.append(f"{rel}:{node.lineno}: defines __getattr__")
    lines += [f"stale KNOWN_GETATTR entry (remove it): {rel}" for rel in sorted(set(KNOWN_GETATTR) - seen)]
    assert not lines, "\n".join(lines)


def test_pipeline_keeps_only_the_lifecycle():
    """``Pipeline`` is the lifecycle and the stats snapshot (issue 16: under 300 lines); what it is
    built from lives in runtime/components.py, wiring.py and outcome.py."""
    lines = len((ROOT / "runtime" / "pipeline.py").read_text().splitlines())
    assert lines < 300, f"runtime/pipeline.py has {lines} lines; move construction or outcome logic out"
