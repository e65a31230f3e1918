"""No product code builds a quoted SQL identifier by hand.

Names from a source are data: every identifier goes through ``psycopg.sql.Identifier``
(or SQLAlchemy's quoting). This check reads every Python file of the product (not the
tests) and fails on the shapes hand-quoting takes: ``f'"{name}"'`` in SQL text,
``'"{}"'.format(...)``, ``'"%s"' % ...`` and ``'"' + name + '"'`` in SQL text. It is
a syntax check, so a new file is covered as soon as it exists; its own examples
below show that it fires.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|COPY|FROM|TABLE|SCHEMA|INTO|JOIN|TRUNCATE|GRANT|REVOKE|"
    r"VIEW|INDEX|COMMENT|WHERE|ATTACH|DETACH)\b|\\copy"
)


def _text(node: ast.AST) -> str:
    """The literal text of a string constant or f-string (placeholders left out)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(part) for part in node.values)
    return ""


def _quotes_a_placeholder(node: ast.JoinedStr) -> bool:
    """``"{x}"`` inside an f-string: a placeholder with a double quote on each side."""
    parts = node.values
    for before, value, after in zip(parts, parts[1:], parts[2:], strict=False):
        if isinstance(value, ast.FormattedValue) and _text(before).endswith('"') and _text(after).startswith('"'):
            return True
    return False


def _added_strings(node: ast.BinOp) -> list[ast.AST]:
    """The operands of a chain of ``+``."""
    operands = []
    for side in (node.left, node.right):
        if isinstance(side, ast.BinOp) and isinstance(side.op, ast.Add):
            operands += _added_strings(side)
        else:
            operands.append(side)
    return operands


def hand_quoted_identifiers(source: str) -> list[int]:
    """The line numbers where ``source`` builds a double-quoted SQL identifier by hand."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr) and _quotes_a_placeholder(node) and SQL_WORDS.search(_text(node)):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "format" and re.search(r'"\{[^}]*\}"', _text(node.func.value)):
                lines.append(node.lineno)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and re.search(r'"%[s(]', _text(node.left)):
            lines.append(node.lineno)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and not isinstance(node.left, ast.BinOp):
            continue
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            texts = [_text(operand) for operand in _added_strings(node)]
            quoted = any(a.endswith('"') and b.startswith('"') for a, b in zip(texts, texts[2:], strict=False))
            if quoted and SQL_WORDS.search("".join(texts)):
                lines.append(node.lineno)
    return sorted(set(lines))


def product_files() -> list[Path]:
    """Every Python file git knows outside the tests."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [PROJECT_ROOT / name for name in listed if not name.startswith("tests/")]


@pytest.mark.parametrize(
    "code",
    [
        """conn.execute(f'COPY "{schema}"."{table}" FROM STDIN')""",
        """conn.execute(f"DROP SCHEMA IF EXISTS \\"{name}\\" CASCADE")""",
        """conn.execute('SELECT * FROM "{}"'.format(table))""",
        """conn.execute('SELECT * FROM "%s"' % table)""",
        """conn.execute('SELECT * FROM "' + table + '" WHERE true')""",
    ],
)
def test_the_check_finds_hand_quoting(code: str) -> None:
    assert hand_quoted_identifiers(code) == [1]


@pytest.mark.parametrize(
    "code",
    [
        """conn.execute(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(schema, table)))""",
        """raise PipelineError(f'table {name!r}: column "{column}" is missing')""",
        """print("rows: " + str(count))""",
    ],
)
def test_the_check_leaves_proper_code_alone(code: str) -> None:
    assert hand_quoted_identifiers(code) == []


def test_no_product_code_quotes_sql_identifiers_by_hand() -> None:
    found = {
        str(path.relative_to(PROJECT_ROOT)): lines
        for path in product_files()
        if (lines := hand_quoted_identifiers(path.read_text(encoding="utf-8")))
    }
    assert found == {}, "build identifiers with psycopg.sql.Identifier (or SQLAlchemy's quoting)"
