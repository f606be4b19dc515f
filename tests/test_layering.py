"""The layers of docs/adr/0002, read from the code's own imports, so the tree keeps drawing the architecture.

Every import of the product counts: at the top of a module, inside a function, and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lowest first: a package may import its own layer's modules and those of the layers below.
LAYERS: dict[str, int] = {"geodata": 1, "rehabmap": 2, "indexer": 3, "search": 3, "api": 4, "web": 4,
                          "app": 5, "cli": 5}
# Packages of one layer are siblings that do not import each other, except the command line, which opens
# the parts the way the composition root does.
SIBLINGS_ALLOWED = {("cli", "app")}
# Inside the domain: the vocabulary every capability shares, which imports none of them.
VOCABULARY = ("rehabmap.errors", "rehabmap.config", "rehabmap.textmatch", "rehabmap.taxonomy", "rehabmap.record",
              "rehabmap.oruk", "rehabmap.index", "rehabmap.sqlite_uri")
CAPABILITIES = ("rehabmap.match", "rehabmap.browse", "rehabmap.gaps", "rehabmap.maintain", "rehabmap.state")
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (the package, when a name is imported from it)
    where: str  # path:line


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_files() -> list[Path]:
    return sorted(p for package in LAYERS for p in (ROOT / package).rglob("*.py"))


MODULES = {module_name(p): p for p in product_files()}


def imports_of(path: Path) -> Iterator[Import]:
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, alias.name, where)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield Import(source, candidate if candidate in MODULES else base, where)


@cache
def product_imports() -> list[Import]:
    """Each import of a product module by a product module, once."""
    found = {i for p in product_files() for i in imports_of(p) if i.target.split(".")[0] in LAYERS}
    return sorted(found, key=lambda i: (i.where, i.target))


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_no_import_runs_up_a_layer_or_across_to_a_sibling():
    wrong = []
    for i in product_imports():
        source, target = i.source.split(".")[0], i.target.split(".")[0]
        if source == target:
            continue
        if LAYERS[target] > LAYERS[source]:
            wrong.append(f"{i.where}: {i.source} (layer {LAYERS[source]}) imports {i.target} (layer {LAYERS[target]})")
        elif LAYERS[target] == LAYERS[source] and (source, target) not in SIBLINGS_ALLOWED:
            wrong.append(f"{i.where}: {i.source} imports its sibling {i.target}")
    assert not wrong, "imports against the layers of docs/adr/0002:\n" + "\n".join(wrong)


def test_the_domain_vocabulary_imports_no_capability():
    wrong = [f"{i.where}: {i.source} imports {i.target}" for i in product_imports()
             if within(i.source, VOCABULARY) and within(i.target, CAPABILITIES)]
    assert not wrong, "\n".join(wrong)


def test_geodata_stands_alone():
    wrong = [f"{i.where}: {i.target}" for i in product_imports()
             if i.source.split(".")[0] == "geodata" and i.target.split(".")[0] != "geodata"]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_modules():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in product_imports():
        if i.target in MODULES and i.target != i.source:
            graph[i.source].add(i.target)
    cycles = [sorted(c) for c in strongly_connected(graph) if len(c) > 1]
    assert not cycles, f"modules that import each other: {cycles}"


def test_no_function_longer_than_80_lines():
    long = []
    for path in product_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, "\n".join(long)


def test_the_checks_see_what_they_judge():
    """The reading itself: a lazy import and one under TYPE_CHECKING are both seen."""
    seen = {(i.source, i.target) for i in product_imports()}
    assert ("cli.match", "app.parts") in seen  # inside the command's function
    assert ("rehabmap.state", "rehabmap.maintain.store") in seen  # under TYPE_CHECKING
    assert sorted(sorted(c) for c in strongly_connected({"a": {"b"}, "b": {"a"}, "c": {"a"}})) == [["a", "b"], ["c"]]


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively (the graph is a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components
