"""The set of lossless widenings (``pipeline.warehouse.widening``), pair by pair, on the typmods PostgreSQL uses."""

from __future__ import annotations

import pytest

from pipeline.warehouse.widening import ColumnType, widens


def varchar(n: int) -> tuple[int, int]:
    return 1043, n + 4


def numeric(precision: int, scale: int = 0) -> tuple[int, int]:
    return 1700, ((precision << 16) | (scale & 0x7FF)) + 4


TYPES: dict[str, tuple[int, int]] = {
    "smallint": (21, -1),
    "integer": (23, -1),
    "bigint": (20, -1),
    "real": (700, -1),
    "double precision": (701, -1),
    "numeric": (1700, -1),
    "numeric(5,0)": numeric(5),
    "numeric(4,0)": numeric(4),
    "numeric(12,2)": numeric(12, 2),
    "numeric(14,2)": numeric(14, 2),
    "numeric(14,4)": numeric(14, 4),
    "numeric(12,3)": numeric(12, 3),
    "numeric(21,2)": numeric(21, 2),
    "numeric(20,-2)": numeric(20, -2),
    "varchar(40)": varchar(40),
    "varchar(200)": varchar(200),
    "varchar": (1043, -1),
    "text": (25, -1),
    "char(4)": (1042, 8),
    "char(8)": (1042, 12),
    "varbit(3)": (1562, 3),
    "varbit": (1562, -1),
    "timestamp(3)": (1114, 3),
    "timestamp": (1114, -1),
    "timestamptz": (1184, -1),
    "time(0)": (1083, 0),
    "time(6)": (1083, 6),
    "interval(0)": (1186, 0x7FFF0000),
    "interval": (1186, -1),
    "smallint[]": (1005, -1),
    "integer[]": (1007, -1),
    "varchar(4)[]": (1015, 8),
    "varchar(9)[]": (1015, 13),
    "text[]": (1009, -1),
    "date": (1082, -1),
}

WIDENINGS = [
    ("smallint", "integer"),
    ("smallint", "bigint"),
    ("integer", "bigint"),
    ("smallint", "numeric"),
    ("smallint", "numeric(5,0)"),
    ("integer", "numeric(12,2)"),
    ("bigint", "numeric(21,2)"),
    ("real", "double precision"),
    ("numeric(12,2)", "numeric(14,2)"),
    ("numeric(12,2)", "numeric(14,4)"),
    ("numeric(12,2)", "numeric"),
    ("varchar(40)", "varchar(200)"),
    ("varchar(40)", "varchar"),
    ("varchar(40)", "text"),
    ("varchar", "text"),
    ("varbit(3)", "varbit"),
    ("timestamp(3)", "timestamp"),
    ("time(0)", "time(6)"),
    ("interval(0)", "interval"),
    ("smallint[]", "integer[]"),
    ("varchar(4)[]", "varchar(9)[]"),
    ("varchar(4)[]", "text[]"),
]
NOT_WIDENINGS = [
    ("integer", "smallint"),
    ("bigint", "integer"),
    ("double precision", "real"),
    ("smallint", "numeric(4,0)"),
    ("bigint", "numeric(14,2)"),
    ("integer", "numeric(20,-2)"),
    ("bigint", "double precision"),
    ("integer", "real"),
    ("numeric(12,2)", "numeric(12,3)"),
    ("numeric(14,2)", "numeric(12,2)"),
    ("numeric", "numeric(21,2)"),
    ("numeric(12,2)", "double precision"),
    ("varchar(200)", "varchar(40)"),
    ("varchar", "varchar(200)"),
    ("text", "varchar"),
    ("char(4)", "char(8)"),
    ("char(4)", "text"),
    ("integer", "text"),
    ("timestamp", "timestamptz"),
    ("timestamp", "timestamp(3)"),
    ("time(6)", "time(0)"),
    ("interval", "interval(0)"),
    ("date", "timestamp"),
    ("integer[]", "smallint[]"),
    ("integer", "integer[]"),
    ("text[]", "text"),
    ("integer", "integer"),
]


def column(name: str) -> ColumnType:
    return ColumnType(*TYPES[name], name)


@pytest.mark.parametrize(("old", "new"), WIDENINGS)
def test_a_lossless_widening_is_one(old: str, new: str) -> None:
    assert widens(column(old), column(new))


@pytest.mark.parametrize(("old", "new"), NOT_WIDENINGS)
def test_any_other_change_is_not_one(old: str, new: str) -> None:
    assert not widens(column(old), column(new))
