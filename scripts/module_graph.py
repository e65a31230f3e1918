"""The import graph between the modules of a package tree, as Mermaid, and its import circles.

docs/architecture.md shows how ``pipeline/``'s modules depend on each other; this draws
that picture from the code, so that the doc can be redrawn after every move
(``make modules``) instead of kept up by hand. A lazy import (inside a function) is
drawn dashed: it hides a circle from Python at import time but is still one between
the modules, so ``--check`` counts it and fails on every circle, one line each.

It reads the code with ``ast`` only (no import of the package, no dependency), so it
runs before ``make setup`` and on a tree that does not import.

With ``--packages`` each sub-package is one node (its modules' imports merged): the
picture a newcomer reads first, and its circles, which the layout must not have either.

Usage: ``module_graph.py [--check] [--packages] [FOLDER]`` (default FOLDER: the repo's ``pipeline/``).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "pipeline"

# (importer, imported) -> True when every import of it is lazy (inside a function)
Edges = dict[tuple[str, str], bool]


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the tree by dotted name; a package by its own name (its ``__init__.py``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join((root.name, *parts))] = path
    return names


def imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Each import statement of a module, with whether it runs only when a function is called."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, lazy = stack.pop()
        inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, inner
            else:
                stack.append((child, inner))


def read_edges(root: Path) -> tuple[dict[str, Path], Edges]:
    """The modules of the tree and the imports between them (a module importing itself is left out)."""
    paths = module_names(root)

    def known(name: str) -> str | None:
        """The module an imported name lives in: its longest prefix that is a module of the tree."""
        parts = name.split(".")
        return next((m for i in range(len(parts), 0, -1) if (m := ".".join(parts[:i])) in paths), None)

    edges: Edges = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node, lazy in imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [known(alias.name) for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the module's package, one level up per dot after the first
                    up = package.split(".")
                    base = ".".join([*up[: len(up) - node.level + 1], *([base] if base else [])])
                targets = [known(f"{base}.{alias.name}") or known(base) for alias in node.names]
            for target in targets:
                if target is not None and target != module:
                    edges[module, target] = edges.get((module, target), True) and lazy
    return paths, edges


def node_id(module: str) -> str:
    """A Mermaid node id for a dotted name (dots are not allowed in ids)."""
    return module.replace(".", "_")


def mermaid(root_name: str, paths: dict[str, Path], edges: Edges) -> str:
    """A Mermaid flowchart: one subgraph per sub-package, the root's own modules flat, lazy imports dashed.

    A package's own node (its ``__init__.py``) is drawn only when it imports or is imported.
    """
    linked = {m for edge in edges for m in edge}
    groups: dict[str, list[str]] = {}
    for module, path in paths.items():
        is_package = path.name == "__init__.py"
        if not is_package or module in linked:
            groups.setdefault(module if is_package else module.rpartition(".")[0], []).append(module)
    lines = ["flowchart LR"]
    for group, members in sorted(groups.items()):
        nested = group != root_name
        if nested:
            lines.append(f"  subgraph {node_id(group)}_package [{group}]")
        lines += [f'{"    " if nested else "  "}{node_id(m)}["{m.rpartition(".")[2]}"]' for m in members]
        if nested:
            lines.append("  end")
    lines += [f"  {node_id(s)} {'-.->' if lazy else '-->'} {node_id(t)}" for (s, t), lazy in sorted(edges.items())]
    return "\n".join(lines)


def by_package(root_name: str, edges: Edges) -> tuple[dict[str, Path], Edges]:
    """The graph with each sub-package of the root merged into one node (lazy only when every import is)."""

    def package(module: str) -> str:
        parts = module.split(".")
        return ".".join(parts[:2]) if len(parts) > 2 else module  # root.pkg.module -> root.pkg

    merged: Edges = {}
    for (source, target), lazy in edges.items():
        if (pair := (package(source), package(target)))[0] != pair[1]:
            merged[pair] = merged.get(pair, True) and lazy
    nodes = sorted({m for edge in merged for m in edge})
    return {m: Path(m.replace(".", "/") + ".py") for m in nodes}, merged


def circles(modules: list[str], edges: Edges) -> list[list[str]]:
    """The strongly connected components of more than one module, lazy imports included, each sorted."""
    after: dict[str, list[str]] = {}
    for source, target in edges:
        after.setdefault(source, []).append(target)
    reach: dict[str, set[str]] = {}
    for start in modules:
        seen, todo = set(), [start]
        while todo:
            new = [t for t in after.get(todo.pop(), []) if t not in seen]
            seen.update(new)
            todo += new
        reach[start] = seen
    components = {frozenset({m, *(n for n in reach[m] if m in reach[n])}) for m in modules}
    return sorted(sorted(c) for c in components if len(c) > 1)


def circle_line(circle: list[str], edges: Edges) -> str:
    """One circle: its modules, then the lazy imports inside it (where it is hidden from Python)."""
    lazy = [f"{s} -> {t}" for (s, t), is_lazy in sorted(edges.items()) if is_lazy and s in circle and t in circle]
    return f"import circle: {', '.join(circle)}" + (f" (lazy: {', '.join(lazy)})" if lazy else "")


def main(argv: list[str] | None = None) -> int:
    """Print the graph, or with ``--check`` the circles (exit 1 when there is one)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_ROOT, help="the package's folder")
    parser.add_argument("--check", action="store_true", help="list the import circles; exit 1 when there is one")
    parser.add_argument("--packages", action="store_true", help="one node per sub-package")
    args = parser.parse_args(argv)
    root = args.folder.resolve()
    paths, edges = read_edges(root)
    if args.packages:
        paths, edges = by_package(root.name, edges)
    if not args.check:
        print(mermaid(root.name, paths, edges))
        return 0
    found = circles(list(paths), edges)
    for circle in found:
        print(circle_line(circle, edges))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
