"""Imports only point down: every module of src/fds sits in a layer (DESIGN.md's list, as
docs/architecture.md draws it), and no import — at the top of a module, inside a function or
under TYPE_CHECKING — reaches a higher layer, closes a cycle, or takes another module's private
name. A module no layer claims fails too: place it here and in docs/architecture.md."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"

# Top to bottom. A module belongs to the layer of its longest listed prefix (the package root
# only to itself); within a layer any import is allowed as long as it closes no cycle.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("package root", ("fds",)),  # fds/__init__.py re-exports FDS (lazily) and the errors
    ("cli", ("fds.cli", "fds.__main__")),  # fds.__main__: `python -m fds`, `torchrun -m fds`
    ("workflows", ("fds.workflows",)),
    ("tracking", ("fds.tracking",)),  # experiment trackers (MLflow, TensorBoard) for workflows
    ("synthesizers", ("fds.synthesizers",)),
    ("estimator", ("fds.estimator", "fds.multimodal")),  # multimodal: FDS.fit on a dict
    ("federated", ("fds.federated",)),
    ("privacy", ("fds.privacy",)),  # context_registry too (privacy/, for the HE service)
    ("evaluation", ("fds.evaluation",)),
    ("report", ("fds.report",)),
    ("training", ("fds.training",)),  # accounting too: DP-SGD needs it, privacy reads it
    ("models", ("fds.models",)),
    ("objectives", ("fds.objectives",)),
    ("nn", ("fds.nn",)),
    ("data", ("fds.data",)),
    ("config", ("fds.config",)),
    # files on disk: rundir (run directory, atomic writes), io (DESIGN.md's modeldir), probefiles
    ("files", ("fds.rundir", "fds.modeldir", "fds.io", "fds.probefiles")),
    # the process FDS runs in: thread pools sized to the free cores
    ("runtime", ("fds.runtime",)),
    ("base", ("fds.errors", "fds._version")),
]


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    name: str | None  # the name taken by `from … import name`, None for `import x`
    where: str  # path:line

    def __str__(self) -> str:
        what = f"from {self.imported} import {self.name}" if self.name else self.imported
        return f"{self.where}: {self.importer} imports {what}"


def modules(src: Path) -> dict[str, Path]:
    """Dotted name → file of every module under src/fds (a package is its __init__)."""
    found = {}
    for path in sorted((src / "fds").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(src: Path) -> Iterator[Import]:
    """Every import of an fds module, wherever it stands in the file."""
    known = modules(src)
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(src.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == "fds" or alias.name.startswith("fds."):
                        yield Import(module, alias.name, None, where)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                if base != "fds" and not base.startswith("fds."):
                    continue
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    target = submodule if submodule in known else base
                    yield Import(module, target, None if target == submodule else alias.name, where)


def layer_of(module: str) -> int | None:
    matches = [
        (len(prefix), index)
        for index, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or (prefix != "fds" and module.startswith(prefix + "."))
    ]
    return max(matches)[1] if matches else None


def violations(src: Path) -> list[str]:
    """One line per problem, naming the import (file:line) that causes it."""
    found = []
    edges = [i for i in imports(src) if i.importer != i.imported]
    for module in modules(src):
        if layer_of(module) is None:
            found.append(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
    for edge in edges:
        low, high = layer_of(edge.importer), layer_of(edge.imported)
        if low is not None and high is not None and high < low:
            found.append(
                f"upward import: {edge} ({LAYERS[low][0]} must not import {LAYERS[high][0]})"
            )
        if edge.name and edge.name.startswith("_") and not edge.name.startswith("__"):
            found.append(f"private name taken from another module: {edge}")
    found += [f"import cycle: {' → '.join(str(e) for e in cycle)}" for cycle in cycles(edges)]
    return found


def cycles(edges: list[Import]) -> list[list[Import]]:
    """One cycle (as its imports) per strongly connected group of modules (Tarjan)."""
    graph: dict[str, dict[str, Import]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, {}).setdefault(edge.imported, edge)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, group) for group in groups]


def _cycle_in(graph: dict[str, dict[str, Import]], group: set[str]) -> list[Import]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths: dict[str, list[Import]] = {start: []}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt, edge in sorted(graph.get(node, {}).items()):
                if nxt == start:
                    return paths[node] + [edge]
                if nxt in group and nxt not in paths:
                    paths[nxt] = paths[node] + [edge]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group has one


def test_imports_only_point_down_and_close_no_cycle() -> None:
    problems = violations(SRC)
    assert not problems, "\n" + "\n".join(problems)


def test_the_graph_holds_lazy_and_type_checking_imports() -> None:
    """The walk must see imports inside functions and under TYPE_CHECKING, or it proves little."""
    found = {(i.importer, i.imported) for i in imports(SRC)}
    assert ("fds", "fds.estimator") in found  # the lazy `fds.FDS` and its TYPE_CHECKING twin
    assert ("fds.cli.data", "fds.workflows.train") in found  # inside a command
    assert len(found) > 300


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "fds" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_an_upward_import_inside_a_function_is_named(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "training/__init__.py": "",
            "training/dp.py": "def f():\n    from fds.privacy.accounting import epsilon\n",
            "privacy/__init__.py": "",
            "privacy/accounting.py": "epsilon = 1\n",
        },
    )
    (problem,) = violations(src)
    assert "upward import" in problem and "fds/training/dp.py:2" in problem
    assert "training must not import privacy" in problem


def test_a_lazy_cycle_and_a_private_name_are_named(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "data/__init__.py": "",
            "data/codec.py": "def load():\n    from fds.data.tabular import Tabular\n",
            "data/tabular.py": "from fds.data.codec import _block\n",
        },
    )
    problems = violations(src)
    assert any("private name" in p and "import _block" in p for p in problems)
    (cycle,) = [p for p in problems if p.startswith("import cycle")]
    assert "fds/data/codec.py:2" in cycle and "fds/data/tabular.py:1" in cycle


def test_a_module_in_no_layer_fails(tmp_path: Path) -> None:
    src = _tree(tmp_path, {"__init__.py": "", "helpers.py": ""})
    assert violations(src) == [
        "fds.helpers is in no layer: add it to LAYERS and docs/architecture.md"
    ]
