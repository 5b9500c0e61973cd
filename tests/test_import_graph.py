"""The package's import graph has no cycle.

Every ``import`` statement of every module counts, at the top or inside a function (a lazy import
is still an edge), and importing ``a.b.c`` also imports its packages ``a.b`` (their ``__init__``);
the root package ``wsl_jax``, which only re-exports, is left out of that rule, as is a submodule
named in ``from package import submodule`` (it imports the submodule, not the package's names).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wsl_jax"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(name: str, path: Path, modules) -> set[str]:
    """The package modules that module ``name`` (file ``path``) imports."""
    named = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join(parent + ([node.module] if node.module else []))
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
            named.update(submodules)
            if len(submodules) < len(node.names):
                named.add(base)
    edges = set()
    for target in named:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        package = target
        while package:  # The packages a module's import runs first.
            if package != name and package != "wsl_jax" and not name.startswith(package + "."):
                edges.add(package)
            package = package.rpartition(".")[0]
    return edges


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over ``wsl_jax``.

    >>> graph = import_graph()
    >>> "wsl_jax.pooling" in graph["wsl_jax.models.wsl"]
    True
    """
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), or a self-import.

    >>> cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    [['a', 'b']]
    """
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_lazy_and_package_imports():
    graph = import_graph()
    assert len(graph) > 40
    assert "wsl_jax.train.state" in graph["wsl_jax.train.loop"]
    assert cycles({"x.a": {"x.b"}, "x.b": {"x.a"}}) == [["x.a", "x.b"]]


def test_no_import_cycle():
    assert cycles(import_graph()) == []
