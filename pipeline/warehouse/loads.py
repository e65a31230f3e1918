"""What the analytics loader (target-analytics) and the publish step share: names and bookkeeping.

Layout of the analytics database (see the README's "Analytics layout"):

- a source's tables keep their exact names in the schema ``pipeline.core.names.analytics_schema``
  gives them (``postgres``, ``postgres__S``, ``csv``); each is partitioned by the day column,
  one partition per day;
- the project's own objects live in schema ``pipeline``: the result view and the bookkeeping
  table ``pipeline.loaded_tables`` (rows per day and table, from the manifest and as loaded);
- ``pipeline.migrated_columns`` records each column type change made by ``pipeline migrate``,
  so that a day from before it loads into the migrated type;
- a day is loaded into fresh tables, again with their exact names, in schemas of their own
  whose names start with ``pipeline_`` (one per load and analytics schema, e.g.
  ``pipeline_20240102_5f1c9a3e_0``). Publishing attaches those tables as the day's partitions,
  so they stay where they were loaded: partition names never derive from a table's name,
  which may already be 63 bytes long.

No source name can produce ``pipeline`` or a ``pipeline_...`` schema (``analytics_schema``
only yields ``postgres``, ``postgres__...`` and ``csv``), so the two never clash.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import psycopg
from psycopg import sql

from pipeline.warehouse.widening import ColumnType, widens

# The SQL the project runs in the analytics database: the result query, the as-of function.
TRANSFORM_DIR = Path(__file__).resolve().parents[2] / "transform"
PROJECT_SCHEMA = "pipeline"
LOAD_SCHEMA_PREFIX = "pipeline_"
DAY_COLUMN = "pipeline_date"
LOADED_TABLES = "loaded_tables"
MIGRATED_COLUMNS = "migrated_columns"
# The first oid of objects a database creates itself (FirstNormalObjectId): any type at
# or above it (an enum, a domain, an extension's type) exists only in some databases.
FIRST_USER_OID = 16384
# Creating the project schema and its table at once from two loads would race.
_BOOTSTRAP_LOCK = 7_261_845_300

_LOADED_TABLES_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    pipeline_date date NOT NULL,
    load_id text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    load_schema text NOT NULL,
    source text NOT NULL,
    source_schema text,
    file_key text NOT NULL,
    file_sha256 text NOT NULL,
    manifest_rows bigint NOT NULL,
    loaded_rows bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    PRIMARY KEY (load_id, schema_name, table_name)
)
"""

_MIGRATED_COLUMNS_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    table_oid oid NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    column_name text NOT NULL,
    from_oid oid NOT NULL,
    from_typmod integer NOT NULL,
    to_oid oid NOT NULL,
    to_typmod integer NOT NULL,
    migrated_at timestamptz NOT NULL DEFAULT now()
)
"""


def loaded_tables() -> sql.Composed:
    """The bookkeeping table: one row per loaded table and day (see ``_LOADED_TABLES_DDL``)."""
    return sql.SQL("{}.{}").format(sql.Identifier(PROJECT_SCHEMA), sql.Identifier(LOADED_TABLES))


def ensure_project_schema(conn: psycopg.Connection) -> None:
    """Create schema ``pipeline`` and its bookkeeping tables if missing (in the caller's transaction)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_BOOTSTRAP_LOCK,))
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(PROJECT_SCHEMA)))
    conn.execute(sql.SQL(_LOADED_TABLES_DDL).format(table=loaded_tables()))
    conn.execute(sql.SQL(_MIGRATED_COLUMNS_DDL).format(table=migrated_columns()))


def migrated_columns() -> sql.Composed:
    """The record of ``pipeline migrate``'s type changes: one row per column and change."""
    return sql.SQL("{}.{}").format(sql.Identifier(PROJECT_SCHEMA), sql.Identifier(MIGRATED_COLUMNS))


def table_columns(conn: psycopg.Connection, schema: str, table: str) -> dict[str, ColumnType]:
    """Column name -> type, in the table's order, without dropped columns; empty if there is no such table."""
    rows = conn.execute(
        """
        SELECT a.attname, a.atttypid::int8, a.atttypmod, format_type(a.atttypid, a.atttypmod)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (schema, table),
    ).fetchall()
    return {name: ColumnType(oid, typmod, text) for name, oid, typmod, text in rows}


def new_load_id() -> str:
    """A fresh id for one load of a day: the loads of one day never share a schema."""
    return secrets.token_hex(4)


def load_schema(day: dt.date, load_id: str, ordinal: int) -> str:
    """The schema of load ``load_id``'s tables of its ``ordinal``-th analytics schema.

    E.g. ``pipeline_20240102_5f1c9a3e_0``: at most 37 bytes whatever the source's names.
    """
    return f"{LOAD_SCHEMA_PREFIX}{day:%Y%m%d}_{load_id}_{ordinal}"


def migrated_from(conn: psycopg.Connection, schema: str, table: str, column: str, old: ColumnType) -> list[ColumnType]:
    """The types ``pipeline migrate`` changed ``schema.table``'s column to from type ``old``.

    Only migrations of the table as it is now count: one dropped and created again (to
    reload every day) has another oid.
    """
    rows = conn.execute(
        sql.SQL(
            "SELECT m.to_oid::int8, m.to_typmod, format_type(m.to_oid, m.to_typmod) FROM {} AS m "
            "JOIN pg_class AS c ON c.oid = m.table_oid JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND m.column_name = %s AND m.from_oid = %s AND m.from_typmod = %s"
        ).format(migrated_columns()),
        (schema, table, column, old.oid, old.typmod),
    ).fetchall()
    return [ColumnType(*row) for row in rows]


def is_earlier_day(conn: psycopg.Connection, day: dt.date, schema: str, table: str) -> bool:
    """Whether analytics table ``schema.table`` has a published day later than ``day`` (``day`` is a rerun or backfill).

    Such a day may bring a column type the table has since been widened or migrated
    from, and then loads into the table's type; a newer day may not (its type is the
    source's change, which only a widening or ``pipeline migrate`` follows).
    """
    row = conn.execute(
        sql.SQL(
            "SELECT EXISTS (SELECT FROM {} WHERE schema_name = %s AND table_name = %s AND pipeline_date > %s "
            "AND published_at IS NOT NULL)"
        ).format(loaded_tables()),
        (schema, table, day),
    ).fetchone()
    return bool(row and row[0])


def converts_into(
    conn: psycopg.Connection, schema: str, table: str, column: str, loaded: ColumnType, analytics: ColumnType
) -> bool:
    """Whether an earlier day's column of type ``loaded`` goes into the table's type ``analytics``.

    It does when the table was widened from it, or migrated from it (and perhaps widened since).
    """
    return widens(loaded, analytics) or any(
        migrated.same_type(analytics) or widens(migrated, analytics)
        for migrated in migrated_from(conn, schema, table, column, loaded)
    )


def alter_column_type(conn: psycopg.Connection, table: tuple[str, str], column: str, to: ColumnType) -> None:
    """``ALTER COLUMN ... TYPE`` with PostgreSQL's cast of each value (on a parent: of every day's partition)."""
    conn.execute(
        sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING CAST({} AS {})").format(
            sql.Identifier(*table), sql.Identifier(column), sql.SQL(to.name), sql.Identifier(column), sql.SQL(to.name)
        )
    )
