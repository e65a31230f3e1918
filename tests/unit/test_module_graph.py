"""``make modules``: the import graph of a package tree, and its circles (lazy imports included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.module_graph import DEFAULT_ROOT, by_package, circle_line, circles, main, mermaid, read_edges


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """A package tree under root from {relative path: source}; returns the package's folder."""
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "pkg"


def test_a_circle_through_a_lazy_import_is_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import f\n",
            "pkg/b.py": "from pkg.c import g\n",
            "pkg/c.py": "def g():\n    from pkg.a import h\n    return h\n",
            "pkg/d.py": "import pkg.a\n",
        },
    )

    assert main(["--check", str(package)]) == 1
    assert capsys.readouterr().out == "import circle: pkg.a, pkg.b, pkg.c (lazy: pkg.c -> pkg.a)\n"


def test_every_circle_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = write_tree(
        tmp_path,
        {
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "from pkg import a\n",
            "pkg/c.py": "from pkg.d import x\n",
            "pkg/d.py": "class D:\n    from pkg.c import y\n",
        },
    )

    assert main(["--check", str(package)]) == 1
    assert capsys.readouterr().out.splitlines() == ["import circle: pkg.a, pkg.b", "import circle: pkg.c, pkg.d"]


def test_a_tree_without_circle_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import f\nimport pkg.c\n",
            "pkg/b.py": "def f():\n    from pkg.c import g\n    return g\n",
            "pkg/c.py": "import os\n",
        },
    )

    assert main(["--check", str(package)]) == 0
    assert capsys.readouterr().out == ""


def test_every_form_of_import_is_read(tmp_path: Path) -> None:
    package = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/top.py": "from pkg import core\nfrom pkg.core import w\n",
            "pkg/core/__init__.py": "from .w import VALUE\n",
            "pkg/core/w.py": "VALUE = 1\n",
            "pkg/core/x.py": (
                "from . import y\n"
                "from .w import VALUE\n"
                "import pkg.core.y as why\n"
                "def f():\n"
                "    from ..top import t\n"
                "    from pkg import core\n"
                "    return t\n"
            ),
            "pkg/core/y.py": "from pkg.core.w import VALUE\nfrom pkg.core import w\nfrom pkg.core.y import z\n",
        },
    )

    paths, edges = read_edges(package)

    assert sorted(paths) == ["pkg", "pkg.core", "pkg.core.w", "pkg.core.x", "pkg.core.y", "pkg.top"]
    assert edges == {
        ("pkg.top", "pkg.core"): False,
        ("pkg.top", "pkg.core.w"): False,
        ("pkg.core", "pkg.core.w"): False,
        ("pkg.core.x", "pkg.core.y"): False,
        ("pkg.core.x", "pkg.core.w"): False,
        ("pkg.core.x", "pkg.top"): True,
        ("pkg.core.x", "pkg.core"): True,
        ("pkg.core.y", "pkg.core.w"): False,
    }
    assert circles(list(paths), edges) == []


def test_the_graph_groups_sub_packages_and_dashes_lazy_imports(tmp_path: Path) -> None:
    package = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/cli.py": "from pkg.days.lfs import f\ndef main():\n    from pkg.core import errors\n",
            "pkg/core/__init__.py": "",
            "pkg/core/errors.py": "",
            "pkg/days/__init__.py": "",
            "pkg/days/lfs.py": "from ..core.errors import E\n",
        },
    )

    assert mermaid("pkg", *read_edges(package)).splitlines() == [
        "flowchart LR",
        '  pkg_cli["cli"]',
        "  subgraph pkg_core_package [pkg.core]",
        '    pkg_core_errors["errors"]',
        "  end",
        "  subgraph pkg_days_package [pkg.days]",
        '    pkg_days_lfs["lfs"]',
        "  end",
        "  pkg_cli -.-> pkg_core_errors",
        "  pkg_cli --> pkg_days_lfs",
        "  pkg_days_lfs --> pkg_core_errors",
    ]


def test_packages_merge_their_modules_imports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = write_tree(
        tmp_path,
        {
            "pkg/top.py": "from pkg.low.a import f\n",
            "pkg/low/a.py": "from pkg.low.b import g\n",
            "pkg/low/b.py": "def g():\n    from pkg.high.c import h\n",
            "pkg/high/c.py": "from pkg.low.a import f\n",
        },
    )

    assert main(["--check", "--packages", str(package)]) == 1
    assert capsys.readouterr().out == "import circle: pkg.high, pkg.low (lazy: pkg.low -> pkg.high)\n"


@pytest.mark.parametrize("packages", [False, True], ids=["modules", "packages"])
def test_pipeline_has_no_import_circle(packages: bool) -> None:
    paths, edges = read_edges(DEFAULT_ROOT)
    if packages:
        paths, edges = by_package(DEFAULT_ROOT.name, edges)

    found = circles(list(paths), edges)

    assert not found, "\n".join(circle_line(circle, edges) for circle in found)
