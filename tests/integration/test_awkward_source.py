"""The three real jobs on an awkward source, every analytics value compared with the source.

The source (fixtures/awkward_source.sql) holds what real databases hold: names of
every kind, enums, domains, composites, ranges, extension types, identity and
generated columns, a partitioned table, an empty table, a table without a key, and
values at their edges; the CSV source (fixtures/awkward_order_details.csv) holds
values at the edges of its declared types. One day runs through postgres-to-lfs,
csv-to-lfs and lfs-to-analytics; then the tests compare, as text (``col::text``),
every value of every table in the analytics database with the source:

* source table ``public.T`` -> ``postgres.T`` (exact name) plus ``pipeline_date``;
* the CSV's rows -> ``csv.order_details``;
* a partitioned table appears once, with all its rows, and its partitions never;
* each column's type is decided from the source's catalog: built-in types as they
  are, domains as their base type, everything else (enum, composite, range,
  extension types) as text, arrays of those as text[].
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pipeline.core.connections import ANALYTICS, SOURCE
from pipeline.core.names import analytics_schema, table_folder
from tests.conftest import PROJECT_ROOT, Pipeline, make_pipeline

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent / "fixtures"
SOURCE_SQL = FIXTURES / "awkward_source.sql"
DETAILS_CSV = FIXTURES / "awkward_order_details.csv"
DETAILS_SCHEMA = PROJECT_ROOT / "extract" / "order_details.schema.json"
DAY = "2024-03-01"
JOBS = ("postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics")
POSTGRES = analytics_schema("postgres", "public")
CSV_SCHEMA = analytics_schema("csv")
DAY_COLUMN = "pipeline_date"
# PostgreSQL's FirstNormalObjectId: oids below it are built in.
FIRST_USER_OID = 16384


@pytest.fixture(scope="module")
def awkward_sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Throwaway databases, the source seeded from the fixture, the fixture CSV as the CSV source."""
    yield from make_pipeline(tmp_path_factory.mktemp("awkward") / "data", SOURCE_SQL, DETAILS_CSV)


@pytest.fixture(scope="module")
def awkward(awkward_sources: Pipeline) -> Pipeline:
    """One day of the awkward sources through the three real jobs; each must succeed."""
    for job in JOBS:
        awkward_sources.run_ok(job, day=DAY)
    return awkward_sources


def connect(pipeline: Pipeline, prefix: str) -> psycopg.Connection:
    """A connection whose text forms do not depend on the server's defaults."""
    conn = pipeline.connect(prefix)
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET IntervalStyle = 'postgres'")
    conn.execute("SET extra_float_digits = 1")
    return conn


def source_tables(conn: psycopg.Connection) -> list[str]:
    """The source's tables of schema public as the pipeline promises them: base tables, partitioned parents,
    never partitions."""
    return [
        name
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1"
        )
    ]


def analytics_tables(conn: psycopg.Connection, schema: str) -> list[str]:
    return [
        name
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
            (schema,),
        )
    ]


def columns(conn: psycopg.Connection, schema: str, table: str) -> list[tuple[str, int, int]]:
    """Each column of ``schema.table`` in order: name, type oid, typmod."""
    return conn.execute(
        "SELECT a.attname, a.atttypid::int, a.atttypmod FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (schema, table),
    ).fetchall()


def analytics_type(conn: psycopg.Connection, type_oid: int, typmod: int) -> str:
    """The type the issue's mapping gives a source column, worked out from the source's catalog.

    Domains become their base type; arrays follow their element; built-in base types
    stay exactly as they are (``format_type``); enums, composites, ranges, multiranges
    and types from extensions become ``text``.
    """
    typtype, category, element, base, base_typmod = conn.execute(
        "SELECT typtype, typcategory, typelem::int, typbasetype::int, typtypmod FROM pg_type WHERE oid = %s",
        (type_oid,),
    ).fetchone()
    if typtype == "d":
        return analytics_type(conn, base, base_typmod)
    if category == "A":
        return analytics_type(conn, element, typmod) + "[]"
    if typtype != "b" or type_oid >= FIRST_USER_OID:
        return "text"
    return conn.execute("SELECT format_type(%s, %s)", (type_oid, typmod)).fetchone()[0]


def rows_as_text(conn: psycopg.Connection, schema: str, table: str, names: list[str], where: sql.Composable) -> list:
    """Every row of ``schema.table`` as the text of ``names`` (NULL as None), sorted: a multiset."""
    query = sql.SQL("SELECT {} FROM {}.{} {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(name)) for name in names),
        sql.Identifier(schema),
        sql.Identifier(table),
        where,
    )
    return sorted(conn.execute(query).fetchall(), key=lambda row: [(value is None, value or "") for value in row])


def on_day() -> sql.Composed:
    return sql.SQL("WHERE {} = {}").format(sql.Identifier(DAY_COLUMN), sql.Literal(DAY))


def test_every_source_table_appears_once_under_its_exact_name(awkward: Pipeline) -> None:
    with connect(awkward, SOURCE) as source, connect(awkward, ANALYTICS) as analytics:
        expected = source_tables(source)
        assert analytics_tables(analytics, POSTGRES) == expected
        assert analytics_tables(analytics, CSV_SCHEMA) == ["order_details"]
        # Not selected by filter_schemas: the source's schema sales reaches nothing.
        assert analytics_tables(analytics, analytics_schema("postgres", "sales")) == []
    # The fixture's names of every kind are really there (a guard against a too easy fixture).
    assert {"orders", "Orders", "%4frders", "order-lines", "lines", "a/b", "..", "../outside", "events"} <= set(
        expected
    )
    assert "events_2023" not in expected
    assert any(len(name.encode()) == 63 for name in expected)


def landed_types(conn: psycopg.Connection, schema: str, table: str) -> dict[str, str]:
    """Each column of an analytics table and its type, as ``format_type`` writes it."""
    return {
        name: conn.execute("SELECT format_type(%s, %s)", (oid, typmod)).fetchone()[0]
        for name, oid, typmod in columns(conn, schema, table)
    }


def test_every_column_keeps_its_name_and_the_type_the_catalog_decides(awkward: Pipeline) -> None:
    with connect(awkward, SOURCE) as source, connect(awkward, ANALYTICS) as analytics:
        for table in source_tables(source):
            expected = {
                name: analytics_type(source, oid, typmod) for name, oid, typmod in columns(source, "public", table)
            }
            landed = landed_types(analytics, POSTGRES, table)
            assert landed.pop(DAY_COLUMN, None) == "date", f"{table!r}: no {DAY_COLUMN} date column"
            assert landed == expected, table
        zoo = landed_types(analytics, POSTGRES, "types_zoo")
    # A few of the mapping's rows, spelt out.
    assert zoo["mood_col"] == "text"
    assert zoo["moods"] == "text[]"
    assert zoo["pos"] == "integer"
    assert zoo["code"] == "character varying(5)"
    assert zoo["point3_col"] == zoo["int_range"] == zoo["ci"] == zoo["h"] == "text"
    assert zoo["n12"] == "numeric(12,2)"
    assert zoo["vc_arr"] == "character varying(4)[]"
    assert zoo["id"] == zoo["serial_col"] == "integer"
    assert zoo["generated_col"] == "numeric"


def test_every_value_of_every_table_matches_the_source(awkward: Pipeline) -> None:
    with connect(awkward, SOURCE) as source, connect(awkward, ANALYTICS) as analytics:
        for table in source_tables(source):
            names = [name for name, _, _ in columns(source, "public", table)]
            expected = rows_as_text(source, "public", table, names, sql.SQL(""))
            landed = rows_as_text(analytics, POSTGRES, table, names, on_day())
            assert landed == expected, f"table {table!r}"
            everything = rows_as_text(analytics, POSTGRES, table, [DAY_COLUMN], sql.SQL(""))
            assert everything == [(DAY,)] * len(expected), f"table {table!r}: rows of other days or no day"
        # The edges are really in the fixture: a partitioned table, an empty one, duplicate rows.
        assert len(rows_as_text(source, "public", "events", ["id"], sql.SQL(""))) == 4
        assert rows_as_text(source, "public", "Empty Table", ["id"], sql.SQL("")) == []
        assert rows_as_text(source, "public", "no_key", ["a", "b"], sql.SQL("")).count(("1", "same")) == 2


def test_the_csv_lands_in_csv_order_details_as_postgresql_reads_its_declared_types(awkward: Pipeline) -> None:
    declared = {
        name: prop["x-sql-datatype"] for name, prop in json.loads(DETAILS_SCHEMA.read_text())["properties"].items()
    }
    with DETAILS_CSV.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        fields = list(reader)
    assert sorted(header) == sorted(declared)
    with connect(awkward, ANALYTICS) as analytics:
        # PostgreSQL's own reading of each field as its declared type is the expected value.
        expected = sorted(
            tuple(
                analytics.execute(
                    sql.SQL("SELECT CAST(%s::text AS {})::text").format(sql.SQL(declared[name])), (field or None,)
                ).fetchone()[0]
                for name, field in zip(header, row, strict=True)
            )
            for row in fields
        )
        assert rows_as_text(analytics, CSV_SCHEMA, "order_details", header, on_day()) == expected
        # Each column has its declared type (the schema's types carry no modifier: regtype names them).
        declared_types = {
            name: analytics.execute("SELECT %s::regtype::text", (datatype,)).fetchone()[0]
            for name, datatype in declared.items()
        }
        assert landed_types(analytics, CSV_SCHEMA, "order_details") == {**declared_types, DAY_COLUMN: "date"}


def test_nothing_is_written_outside_the_day_folders(awkward: Pipeline) -> None:
    data = awkward.data_dir
    # The module's folder holds DATA_DIR only: no name escaped it (e.g. "../outside").
    assert [path.name for path in data.parent.iterdir()] == [data.name]
    with connect(awkward, SOURCE) as source:
        folders = {table_folder("public", table) for table in source_tables(source)}
    assert {path.name for path in (data / "postgres").iterdir()} == folders
    misplaced = []
    for path in sorted(data.rglob("*")):
        if not path.is_file():
            continue
        parts = path.relative_to(data).parts
        allowed = (
            (len(parts) == 4 and parts[0] == "postgres" and parts[1] in folders and parts[2] == DAY)
            or (len(parts) == 3 and parts[:2] == ("csv", DAY))
            or (len(parts) >= 2 and parts[0] in ("_runs", "results"))
        )
        if not allowed:
            misplaced.append(str(path.relative_to(data)))
    assert misplaced == []
