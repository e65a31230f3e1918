"""What the analytics loader (target-analytics) and the publish step share: names and column types.

Layout of the analytics database (see the README's "Analytics layout"):

- a source's tables keep their exact names in the schema ``pipeline.core.names.analytics_schema``
  gives them (``postgres``, ``postgres__S``, ``csv``); each is partitioned by the day column,
  one partition per day;
- the project's own objects live in schema ``pipeline``: the result view and the bookkeeping
  tables (rows per day and table, from the manifest and as loaded; the column type changes
  made by ``pipeline migrate``), whose DDL and statements are ``pipeline.warehouse.bookkeeping``'s;
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

from pipeline.warehouse.widening import ColumnType

# The SQL the project runs in the analytics database: the result query, the as-of function.
TRANSFORM_DIR = Path(__file__).resolve().parents[2] / "transform"
PROJECT_SCHEMA = "pipeline"
LOAD_SCHEMA_PREFIX = "pipeline_"
DAY_COLUMN = "pipeline_date"
# The first oid of objects a database creates itself (FirstNormalObjectId): any type at
# or above it (an enum, a domain, an extension's type) exists only in some databases.
FIRST_USER_OID = 16384


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


def alter_column_type(conn: psycopg.Connection, table: tuple[str, str], column: str, to: ColumnType) -> None:
    """``ALTER COLUMN ... TYPE`` with PostgreSQL's cast of each value (on a parent: of every day's partition)."""
    conn.execute(
        sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING CAST({} AS {})").format(
            sql.Identifier(*table), sql.Identifier(column), sql.SQL(to.name), sql.Identifier(column), sql.SQL(to.name)
        )
    )
