"""The package's shape, as CI enforces it: imports point down the layers in pyproject.toml, no module imports
another's private names, and there is no import cycle (imports inside functions included)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parents[1]


def _graph() -> tuple[nx.DiGraph, grimp.ImportGraph]:
    imports = grimp.build_graph("tokensieve", cache_dir=None)
    graph = nx.DiGraph()
    for module in imports.modules:
        graph.add_node(module)
        for imported in imports.find_modules_directly_imported_by(module):
            graph.add_edge(module, imported)
    return graph, imports


def test_the_layers_contract_is_kept():
    done = subprocess.run([Path(sys.executable).parent / "lint-imports", "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "1 kept, 0 broken" in done.stdout, done.stdout[-3000:]


def test_no_import_cycle_even_through_imports_inside_functions():
    graph, _ = _graph()
    # a package imports its own submodules in __init__; a submodule importing its package's names is the cycle
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert cycles == [], cycles


def private_uses(source: str, modules: set[str]) -> list[str]:
    """`from tokensieve.x import _name`, and `mod._name` where `mod` names a tokensieve module, in `source`."""
    tree = ast.parse(source)
    module_aliases, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tokensieve"):
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
                elif f"{node.module}.{alias.name}" in modules:
                    module_aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            module_aliases.update(a.asname for a in node.names if a.asname and a.name.startswith("tokensieve"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in module_aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    _, imports = _graph()
    modules = set(imports.modules)
    found = [f"{path.relative_to(ROOT)}:{hit}" for path in sorted((ROOT / "src").rglob("*.py"))
             for hit in private_uses(path.read_text(), modules)]
    assert found == [], "\n".join(found)


def test_the_cycle_check_sees_a_cycle_and_a_private_import():
    """The two checks above must be able to fail."""
    graph = nx.DiGraph([("a", "b"), ("b", "a"), ("b", "c")])
    assert [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1] == [["a", "b"]]
    source = ("from tokensieve.generation import (\n    Batch,\n    _feed,\n)\n"
              "from tokensieve.bench import report\nreport._f(1)\n")
    assert private_uses(source, {"tokensieve.bench.report"}) == [
        "1: from tokensieve.generation import _feed", "6: report._f"]
