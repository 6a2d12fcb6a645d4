"""Import cycles among the project's modules. Imports are the architecture (STYLE.md, lesson 12): two modules
that import each other, even from inside a function, are one module in two files, and the second import
hides the dependency. Every `import` and `from ... import` counts, at module level or in a function.

`from package import name` is an edge to package.name when that is a module, else to the package. A module's
implicit import of its own package's __init__ is not an edge: a package that re-exports its submodules is
the usual layout, not a cycle."""
import ast
import os

from conftest import ROOT

PACKAGES = ("compiler", "export", "deploy", "runtime", "trainer", "tinyr1")

KNOWN = set()                 # cycles that exist today: none (add one only with the change that removes it)


def modules(root, packages=PACKAGES):
    """{dotted name: path} of every .py file under the packages (trainer/checkpoints holds no code)."""
    out = {}
    for pkg in packages:
        for d, dirs, files in os.walk(os.path.join(root, pkg)):
            dirs[:] = sorted(x for x in dirs if x not in ("__pycache__", "checkpoints"))
            for f in files:
                if f.endswith(".py"):
                    name = os.path.relpath(os.path.join(d, f[:-3]), root).replace(os.sep, ".")
                    out[name.removesuffix(".__init__")] = os.path.join(d, f)
    return out


def import_graph(root, packages=PACKAGES):
    """{module: set of project modules it imports anywhere in its body}."""
    mods = modules(root, packages)

    def target(name):
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in mods.items():
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges |= {target(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:                                   # relative: from the package, up level - 1
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                edges |= {target(f"{base}.{a.name}") if f"{base}.{a.name}" in mods else target(base)
                          for a in node.names}
        graph[name] = edges - {None, name}
    return graph


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan), each a frozenset."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return set(found)


def test_no_import_cycles_among_the_projects_modules():
    graph = import_graph(ROOT)
    assert len(graph) > 80 and "runtime.generate" in graph["runtime.model"]        # the walk sees the project
    found = cycles(graph)
    new = {c: sorted((a, b) for a in c for b in graph[a] if b in c) for c in found - KNOWN}
    assert not new, f"import cycles (module -> what it imports): {new}"
    assert found == KNOWN, f"fixed, delete from KNOWN: {KNOWN - found}"


def test_the_walk_finds_a_cycle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.sub import b\n")        # a package re-exporting: no cycle
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import c\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    graph = import_graph(str(tmp_path), ("pkg",))
    assert graph["pkg.sub.b"] == {"pkg.c"} and graph["pkg"] == {"pkg.sub.b"}
    assert cycles(graph) == {frozenset({"pkg.a", "pkg.sub.b", "pkg.c"})}
