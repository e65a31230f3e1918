"""Every built-in base type a table can have, and its array, through the three real jobs.

The table is generated from the server's own catalog (``pg_type``): one column per
built-in base type and one per array of it, each filled with the values below (edge
values included: infinite dates and timestamps, NaN, -0, empty and two-dimensional
arrays, bytea with NUL bytes, json with line breaks, text over 1 MB). A type that
accepts no input value at all is listed in ``NO_INPUT`` and tested with NULL. One day
then runs through postgres-to-lfs, csv-to-lfs and lfs-to-analytics, and every value in
the analytics database is compared with the source's text form (``col::text``).

The values are data: a base type that the server has and this file does not know
fails the test, so a new PostgreSQL version cannot slip a type past it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pipeline.core.connections import ANALYTICS, SOURCE
from pipeline.core.names import analytics_schema
from tests.conftest import Pipeline, make_pipeline
from tests.integration.test_awkward_source import DETAILS_CSV
from tests.integration.test_awkward_source import connect as connect_with_fixed_text

pytestmark = pytest.mark.integration

DAY = "2024-03-02"
JOBS = ("postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics")
TABLE = "every_type"
POSTGRES = analytics_schema("postgres", "public")
FIRST_USER_OID = 16384
BIG_TEXT = 'x\n"é,' * 300_000  # 1.8 MB, with line breaks, quotes and commas
INFINITE_TIMESTAMPS = ["infinity", "-infinity"]

# Values of each base type, as input text. Row i of the table holds each type's i-th
# value (NULL once a type has no more); the last row is NULL everywhere.
VALUES: dict[str, list[str]] = {
    "aclitem": ["pg_monitor=r/pg_monitor"],
    "bit": ["1", "0"],
    "bool": ["true", "false"],
    "box": ["(3,4),(1,2)"],
    "bpchar": ["a  ", "", "ü"],
    "bytea": ["\\x00ff00", "\\x", "\\x0000"],
    "char": ["a", '"'],
    "cid": ["0", "4294967295"],
    "cidr": ["10.0.0.0/8", "::1/128"],
    "circle": ["<(1,2),3>"],
    "date": ["2024-02-29", *INFINITE_TIMESTAMPS, "4713-01-01 BC", "5874897-12-31"],
    "float4": ["1.5", "NaN", "-0", "Infinity", "-Infinity", "3.4028235e+38", "1e-45"],
    "float8": ["0.1", "NaN", "-0", "Infinity", "-Infinity", "1.7976931348623157e+308", "5e-324"],
    "inet": ["192.168.0.1/24", "::ffff:1.2.3.4"],
    "int2": ["-32768", "32767", "0"],
    "int2vector": ["1 2 3", ""],
    "int4": ["-2147483648", "2147483647"],
    "int8": ["-9223372036854775808", "9223372036854775807"],
    "interval": ["1 year 2 mons 3 days 04:05:06.789", "-178000000 years", "00:00:00"],
    "json": ['{"a": 1,\n "b": "x\\ny"}', "[]", '"s"', "null"],
    "jsonb": ['{"a": 1,\n "b": "x\\ny"}', "[]", '"s"', "null"],
    "jsonpath": ["$.a[*] ? (@ > 1)"],
    "line": ["{1,2,3}"],
    "lseg": ["[(1,2),(3,4)]"],
    "macaddr": ["08:00:2b:01:02:03"],
    "macaddr8": ["08:00:2b:01:02:03:04:05"],
    "money": ["1234.56", "-0.01"],
    "name": ["pg_class", "n" * 63],
    "numeric": ["NaN", "Infinity", "-Infinity", "-0", "0.000000000000000000001", "123456789012345678901234567890.123"],
    "oid": ["0", "4294967295"],
    "oidvector": ["1 2", ""],
    "path": ["[(1,2),(3,4)]", "((0,0),(1,1))"],
    "pg_lsn": ["16/B374D848", "0/0"],
    "pg_snapshot": ["10:20:10,14,15"],
    "point": ["(1.5,-0)"],
    "polygon": ["((0,0),(1,1),(1,0))"],
    "refcursor": ["cursor name"],
    "regclass": [TABLE, "pg_catalog.pg_type"],
    "regcollation": ['"C"', '"default"'],
    "regconfig": ["english", "simple"],
    "regdictionary": ["simple", "english_stem"],
    "regnamespace": ["pg_catalog", "public"],
    "regoper": ["||/", "0"],
    "regoperator": ["+(integer,integer)", "-(NONE,integer)"],
    "regproc": ["now", "0"],
    "regprocedure": ["upper(text)", "sum(integer)"],
    "regrole": ["pg_monitor", "pg_read_all_data"],
    "regtype": ["integer", "character varying", "double precision[]"],
    "text": ["", 'a\r\nb,"c"\\\t', BIG_TEXT],
    "tid": ["(0,1)", "(4294967295,65535)"],
    "time": ["24:00:00", "00:00:00", "12:34:56.789012"],
    "timestamp": [
        "2024-02-29 12:34:56.789012",
        *INFINITE_TIMESTAMPS,
        "4713-01-01 00:00:00 BC",
        "294276-12-31 23:59:59",
    ],
    "timestamptz": ["2024-02-29 12:34:56.789012+00", *INFINITE_TIMESTAMPS, "4713-01-01 00:00:00+00 BC"],
    "timetz": ["12:34:56+05:30", "00:00:00-15:59"],
    "tsquery": ["'a' & !'b' | 'c':*"],
    "tsvector": ["'a':1A 'b c':2"],
    "txid_snapshot": ["10:20:10,14,15"],
    "uuid": ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"],
    "varbit": ["", "10101"],
    "varchar": ["", "ü€𝄞"],
    "xid": ["0", "4294967295"],
    "xid8": ["0", "18446744073709551615"],
    "xml": ['<a b="1">x\ny</a>', "text only"],
}
# Base types whose input function refuses every value: a column of one holds NULL only.
NO_INPUT = frozenset(
    {
        "gtsvector",
        "pg_brin_bloom_summary",
        "pg_brin_minmax_multi_summary",
        "pg_dependencies",
        "pg_mcv_list",
        "pg_ndistinct",
        "pg_node_tree",
    }
)
# What cannot travel as itself: a name of the source's catalog objects (reg*, aclitem's
# roles), or a type without input. These travel as text.
TRAVEL_AS_TEXT = NO_INPUT | {"aclitem"} | {name for name in VALUES if name.startswith("reg")}

_BASE_TYPES = """
    SELECT t.typname, format_type(t.oid, NULL), t.typarray <> 0, format_type(t.typarray, NULL)
      FROM pg_type AS t
     WHERE t.typtype = 'b' AND t.oid < %s
       AND NOT (t.typlen = -1 AND t.typelem <> 0 AND t.typname LIKE '\\_%%')
     ORDER BY t.typname
"""


def base_types(conn: psycopg.Connection) -> list[tuple[str, str, bool, str]]:
    """(name, column type, has an array type, its array type) of every built-in base type, arrays excluded."""
    return conn.execute(_BASE_TYPES, (FIRST_USER_OID,)).fetchall()


def array_values(values: list[str]) -> list[sql.Composable]:
    """The array column's values: all the type's values (and a NULL), empty, two-dimensional, one NULL element."""
    literals = [sql.Literal(value) for value in values]
    if not literals:
        return [sql.SQL("'{}'"), sql.SQL("ARRAY[NULL]")]
    first, last = literals[0], literals[-1]
    return [
        sql.SQL("ARRAY[{}, NULL]").format(sql.SQL(", ").join(literals)),
        sql.SQL("'{}'"),
        sql.SQL("ARRAY[ARRAY[{}, {}], ARRAY[{}, NULL]]").format(first, first, last),
    ]


def create_every_type_table(conn: psycopg.Connection) -> list[str]:
    """Create and fill the table of every type; returns its columns in order."""
    types = base_types(conn)
    columns: dict[str, tuple[sql.Composable, list[sql.Composable]]] = {}
    for name, type_name, has_array, array_name in types:
        column_type = sql.SQL(type_name)
        columns[name] = (column_type, [sql.Literal(value) for value in VALUES.get(name, [])])
        if has_array:
            columns[f"{name}[]"] = (sql.SQL(array_name), array_values(VALUES.get(name, [])))
    rows = max(len(values) for _, values in columns.values()) + 1
    definitions = [sql.SQL("id integer PRIMARY KEY")] + [
        sql.SQL("{} {}").format(sql.Identifier(name), column_type) for name, (column_type, _) in columns.items()
    ]
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(TABLE), sql.SQL(", ").join(definitions)))
    for row in range(rows):
        values = [sql.Literal(row)] + [
            sql.SQL("CAST({} AS {})").format(values[row] if row < len(values) else sql.NULL, column_type)
            for column_type, values in columns.values()
        ]
        conn.execute(sql.SQL("INSERT INTO {} VALUES ({})").format(sql.Identifier(TABLE), sql.SQL(", ").join(values)))
    return list(columns)


@pytest.fixture(scope="module")
def every_type(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pipeline, list[str]]]:
    """A source holding only the table of every type, one day of it through the three jobs."""
    folder = tmp_path_factory.mktemp("every_type")
    dump = folder / "empty.sql"
    dump.write_text("SELECT 1;\n", encoding="utf-8")
    for pipeline in make_pipeline(folder / "data", dump, DETAILS_CSV):
        with pipeline.connect(SOURCE) as conn:
            names = create_every_type_table(conn)
        for job in JOBS:
            pipeline.run_ok(job, day=DAY)
        yield pipeline, names


def connect(pipeline: Pipeline, prefix: str) -> psycopg.Connection:
    """As the extract reads: also ``search_path`` pg_catalog, so reg* values are schema-qualified."""
    conn = connect_with_fixed_text(pipeline, prefix)
    conn.execute("SET search_path = pg_catalog")
    return conn


def test_the_types_are_the_servers_own_each_with_values_or_listed_as_accepting_none(
    every_type: tuple[Pipeline, list[str]],
) -> None:
    pipeline, _ = every_type
    with pipeline.connect(SOURCE) as conn:
        names = {name for name, *_ in base_types(conn)}
        assert names == set(VALUES) | NO_INPUT, "a base type without values here, or one the server lacks"
        assert not set(VALUES) & NO_INPUT
        for name in NO_INPUT:
            with pytest.raises(psycopg.Error), conn.transaction():
                conn.execute(sql.SQL("SELECT CAST('' AS {})").format(sql.Identifier(name)))


def test_every_value_of_every_type_matches_the_sources_text(every_type: tuple[Pipeline, list[str]]) -> None:
    pipeline, names = every_type
    texts = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(name)) for name in ["id", *names])
    query = sql.SQL("SELECT {} FROM {} ORDER BY id")
    with connect(pipeline, SOURCE) as source, connect(pipeline, ANALYTICS) as analytics:
        expected = source.execute(query.format(texts, sql.Identifier("public", TABLE))).fetchall()
        landed = analytics.execute(query.format(texts, sql.Identifier(POSTGRES, TABLE))).fetchall()
    assert len(landed) == len(expected)
    for want, got in zip(expected, landed, strict=True):
        for name, want_value, got_value in zip(["id", *names], want, got, strict=True):
            assert got_value == want_value, f"column {name!r}, row {want[0]}"
    # The edges are really there.
    column = dict(zip(["id", *names], zip(*expected, strict=True), strict=True))
    assert {"infinity", "-infinity"} <= set(column["date"]) & set(column["timestamptz"])
    assert {"NaN", "-0", "Infinity"} <= set(column["float8"])
    assert {"{}", "{{-32768,-32768},{0,NULL}}"} <= set(column["int2[]"])
    assert "\\x00ff00" in column["bytea"]
    assert BIG_TEXT in column["text"]
    assert all(value is None for value in column["pg_node_tree"])


def test_types_that_cannot_travel_as_themselves_travel_as_text_recorded_in_the_schema_file(
    every_type: tuple[Pipeline, list[str]],
) -> None:
    pipeline, names = every_type
    schema_file = pipeline.data_dir / "postgres" / TABLE / DAY / "_schema.json"
    properties = json.loads(schema_file.read_text(encoding="utf-8"))["tables"][TABLE]["schema"]["properties"]
    with connect(pipeline, SOURCE) as source, connect(pipeline, ANALYTICS) as analytics:
        source_types = _column_types(source, "public")
        landed = _column_types(analytics, POSTGRES)
    for name in names:
        as_text = name.removesuffix("[]") in TRAVEL_AS_TEXT
        expected = ("text[]" if name.endswith("[]") else "text") if as_text else source_types[name]
        assert landed[name] == expected, name
        assert properties[name]["x-sql-datatype"] == expected, name
        assert properties[name].get("x-source-type") == (source_types[name] if as_text else None), name


def _column_types(conn: psycopg.Connection, schema: str) -> dict[str, str]:
    return dict(
        conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
            (schema, TABLE),
        ).fetchall()
    )
