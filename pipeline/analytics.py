"""Publishing one loaded day from its staging schema into the typed analytics tables.

The final tables hold every day side by side: each has a ``pipeline_date`` column
that leads its primary key. Publishing day D is one transaction that creates any
missing table or column (with the staging table's types, which are the source's),
deletes D's rows and inserts the staged ones, removes D from tables the day no
longer has, keeps the result view in place and drops the staging schema. Readers
see the old day or the new one, never a mix; other days are never touched; a rerun
of the same files gives the same tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import psycopg
from psycopg import sql

from pipeline.crashpoints import pause_point
from pipeline.errors import PipelineError
from pipeline.staging import DAY_COLUMN, FINAL_SCHEMA, staging_schema

RESULT_VIEW = "orders_with_details"
RESULT_QUERY = Path(__file__).resolve().parents[1] / "transform" / f"{RESULT_VIEW}.sql"
# One publish at a time: concurrent days would race on CREATE/ALTER TABLE.
_PUBLISH_LOCK = 7_261_845_301


@dataclasses.dataclass(frozen=True)
class Column:
    """A column as the catalog describes it."""

    name: str
    sql_type: str
    not_null: bool


def _columns(conn: psycopg.Connection, schema: str, table: str) -> list[Column]:
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (schema, table),
    ).fetchall()
    return [Column(*row) for row in rows]


def _primary_key(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        """
        SELECT a.attname
        FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass AND i.indisprimary
        ORDER BY array_position(i.indkey, a.attnum)
        """,
        (schema, table),
    ).fetchall()
    return [name for (name,) in rows]


def _tables(conn: psycopg.Connection, schema: str) -> list[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,)
    ).fetchall()
    return [name for (name,) in rows]


def _create_final_table(conn: psycopg.Connection, table: str, columns: list[Column], key: list[str]) -> None:
    """Create ``table`` with the staged columns' types, keyed by day and the source's key."""
    final = sql.SQL("{}.{}").format(sql.Identifier(FINAL_SCHEMA), sql.Identifier(table))
    definitions = [sql.SQL("{} date NOT NULL").format(sql.Identifier(DAY_COLUMN))]
    definitions += [
        sql.SQL("{} {}{}").format(
            sql.Identifier(c.name), sql.SQL(c.sql_type), sql.SQL(" NOT NULL" if c.not_null else "")
        )
        for c in columns
    ]
    if key:
        keys = sql.SQL(", ").join(map(sql.Identifier, [DAY_COLUMN, *key]))
        definitions.append(sql.SQL("PRIMARY KEY ({})").format(keys))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(final, sql.SQL(", ").join(definitions)))
    if not key:
        # Without a source key, an index on the day still makes replacing a day cheap.
        conn.execute(sql.SQL("CREATE INDEX ON {} ({})").format(final, sql.Identifier(DAY_COLUMN)))


def _align_final_table(conn: psycopg.Connection, table: str, staged: list[Column]) -> None:
    """Add columns the source gained; refuse a column whose type changed."""
    final = {c.name: c for c in _columns(conn, FINAL_SCHEMA, table)}
    for column in staged:
        existing = final.get(column.name)
        if existing is None:
            conn.execute(
                sql.SQL("ALTER TABLE {}.{} ADD COLUMN {} {}").format(
                    sql.Identifier(FINAL_SCHEMA),
                    sql.Identifier(table),
                    sql.Identifier(column.name),
                    sql.SQL(column.sql_type),
                )
            )
        elif existing.sql_type != column.sql_type:
            raise PipelineError(
                f"table {table}, column {column.name}: the source now has type {column.sql_type}, "
                f"the analytics table {existing.sql_type}; migrate the analytics table first"
            )


def _replace_day(conn: psycopg.Connection, table: str, staging: str, columns: list[Column], day: dt.date) -> int:
    final = sql.SQL("{}.{}").format(sql.Identifier(FINAL_SCHEMA), sql.Identifier(table))
    conn.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(final, sql.Identifier(DAY_COLUMN)), (day,))
    names = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    cursor = conn.execute(
        sql.SQL("INSERT INTO {} ({}, {}) SELECT %s, {} FROM {}.{}").format(
            final, sql.Identifier(DAY_COLUMN), names, names, sql.Identifier(staging), sql.Identifier(table)
        ),
        (day,),
    )
    return cursor.rowcount


def _remove_day_from_other_tables(conn: psycopg.Connection, loaded: set[str], day: dt.date) -> None:
    """A table the day no longer has (dropped at the source) keeps no rows for that day."""
    for table in _tables(conn, FINAL_SCHEMA):
        if table not in loaded and DAY_COLUMN in {c.name for c in _columns(conn, FINAL_SCHEMA, table)}:
            conn.execute(
                sql.SQL("DELETE FROM {}.{} WHERE {} = %s").format(
                    sql.Identifier(FINAL_SCHEMA), sql.Identifier(table), sql.Identifier(DAY_COLUMN)
                ),
                (day,),
            )


def _ensure_result_view(conn: psycopg.Connection) -> None:
    tables = set(_tables(conn, FINAL_SCHEMA))
    if {"orders", "order_details"} <= tables:
        conn.execute(
            sql.SQL("CREATE OR REPLACE VIEW {}.{} AS {}").format(
                sql.Identifier(FINAL_SCHEMA), sql.Identifier(RESULT_VIEW), sql.SQL(RESULT_QUERY.read_text())
            )
        )


def publish_day(conn: psycopg.Connection, day: dt.date) -> dict[str, int]:
    """Replace ``day`` in the final tables from its staging schema; returns rows per table."""
    staging = staging_schema(day)
    published: dict[str, int] = {}
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PUBLISH_LOCK,))
        if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (staging,)).fetchone():
            raise PipelineError(f"no staging schema {staging} in the analytics database: nothing was loaded for {day}")
        existing = set(_tables(conn, FINAL_SCHEMA))
        for table in _tables(conn, staging):
            columns = _columns(conn, staging, table)
            if table not in existing:
                _create_final_table(conn, table, columns, _primary_key(conn, staging, table))
            else:
                _align_final_table(conn, table, columns)
            published[table] = _replace_day(conn, table, staging, columns, day)
        _remove_day_from_other_tables(conn, set(published), day)
        _ensure_result_view(conn)
        pause_point("analytics-publish")
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(staging)))
    return published
