"""tap-postgres-native's type mapping by kind, on hand-made pg_type facts (no database).

The module is pure Python and lives in the plugin's package, which is installed in
the plugin's own virtualenv only, so it is loaded here from its file.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "extract/tap-postgres-native/tap_postgres_native/type_mapping.py"
_spec = importlib.util.spec_from_file_location("type_mapping_under_test", PATH)
assert _spec is not None
assert _spec.loader is not None
tm = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = tm
_spec.loader.exec_module(tm)


def base(oid: int, array: int = 0, kind: str = "b", element: int = 0) -> object:
    return tm.PgType(oid, kind, 0, -1, element, array, False, ())


def domain(oid: int, over: int, typmod: int = -1, *, not_null: bool = False, checks: tuple[str, ...] = ()) -> object:
    return tm.PgType(oid, "d", over, typmod, 0, 0, not_null, checks)


TYPES = {
    t.oid: t
    for t in [
        base(23, array=1007),
        base(1007, element=23),
        base(1043, array=1015),
        base(1015, element=1043),
        base(22, element=21),  # int2vector: built in, stays as it is
        base(21, array=1005),
        base(3904, kind="r", array=3905),  # int4range
        base(3905, element=3904),
        base(50001, kind="e", array=50002),  # an enum
        base(50002, element=50001),
        base(50003, array=50004),  # an extension's base type (citext)
        base(50004, element=50003),
        domain(60001, 23, checks=("CHECK ((VALUE > 0))",)),
        domain(60002, 60001, checks=("CHECK ((VALUE < 10))",)),
        domain(60003, 1043, 14, not_null=True),
        base(60004, element=60001),  # posint[]
        domain(60005, 50001),  # a domain over an enum
        base(2205, array=2210),  # regclass: names an object of the source's catalog
        base(2210, element=2205),
        base(1033, array=1034),  # aclitem: names roles
        base(194),  # pg_node_tree: accepts no input value
        base(2206),  # regtype
        domain(60006, 2206),  # a domain over regtype
    ]
}


@pytest.mark.parametrize(
    ("oid", "typmod", "expected"),
    [
        (23, -1, (23, -1, False, ())),
        (1015, 19, (1015, 19, False, ())),
        (22, -1, (22, -1, False, ())),
        (3904, -1, (25, -1, True, ())),
        (3905, -1, (1009, -1, True, ())),
        (50001, -1, (25, -1, True, ())),
        (50002, -1, (1009, -1, True, ())),
        (50003, -1, (25, -1, True, ())),
        (60002, -1, (23, -1, False, ("CHECK ((VALUE < 10))", "CHECK ((VALUE > 0))"))),
        (60003, -1, (1043, 14, False, ("NOT NULL",))),
        (60004, -1, (1007, -1, False, ("CHECK ((VALUE > 0))",))),
        (60005, -1, (25, -1, True, ())),
        (2205, -1, (25, -1, True, ())),
        (2210, -1, (1009, -1, True, ())),
        (1033, -1, (25, -1, True, ())),
        (194, -1, (25, -1, True, ())),
        (60006, -1, (25, -1, True, ())),
    ],
)
def test_each_kind_of_type_gets_its_analytics_type(oid: int, typmod: int, expected: tuple) -> None:
    resolved = tm.resolve(oid, typmod, TYPES)
    assert (resolved.oid, resolved.typmod, resolved.cast_to_text, resolved.domain_checks) == expected
    assert resolved.is_source_type == (resolved.oid == oid)


def test_a_type_missing_from_the_catalog_read_is_reported() -> None:
    with pytest.raises(tm.UnknownTypeError):
        tm.resolve(99999, -1, TYPES)


def test_json_schema_of_mapped_columns() -> None:
    assert tm.json_schema(25, TYPES, nullable=True) == {"type": ["string", "null"]}
    assert tm.json_schema(1009, TYPES, nullable=False) == {"type": ["array"], "items": {"type": ["string", "null"]}}
    assert tm.json_schema(1007, TYPES, nullable=True) == {
        "type": ["array", "null"],
        "items": {"type": ["integer", "null"]},
    }
    assert tm.json_schema(17, TYPES, nullable=True) == {"type": ["string", "null"], "contentEncoding": "base16"}
