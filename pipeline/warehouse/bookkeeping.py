"""The analytics database's bookkeeping: ``pipeline.loaded_tables`` and ``pipeline.migrated_columns``.

Why one module: the loader records each table it loads, the publish reconciles and
marks those rows, ``pipeline migrate`` records its type changes, the load and the
publish read both tables to let an earlier day in, and retention forgets a day's rows.
The tables' DDL and every statement on them live here, so their columns and the
meaning of a row (``published_at`` NULL: loaded, not yet published) are read and
changed in one place. Each function runs its statements on the caller's connection, in
the caller's transaction (with the caller's locks): none opens or ends a transaction.

- ``pipeline.loaded_tables``: one row per day, load and table, with the manifest's and
  the loaded row counts; ``published_at`` is set when the publish attaches the load;
- ``pipeline.migrated_columns``: one row per column type change made by ``pipeline migrate``,
  so that a day from before it loads into the migrated type.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import psycopg
from psycopg import sql

from pipeline.warehouse.loads import PROJECT_SCHEMA
from pipeline.warehouse.widening import ColumnType, widens

LOADED_TABLES = "loaded_tables"
MIGRATED_COLUMNS = "migrated_columns"
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


@dataclasses.dataclass(frozen=True)
class LoadedTable:
    """One table of the day's load, as target-analytics recorded it."""

    schema_name: str
    table_name: str
    load_schema: str
    source: str
    file_key: str
    file_sha256: str
    loaded_rows: int

    @property
    def label(self) -> str:
        """The table's analytics name for messages."""
        return f"{self.schema_name!r}.{self.table_name!r}"


def loaded_tables() -> sql.Composed:
    """The bookkeeping table: one row per loaded table and day (see ``_LOADED_TABLES_DDL``)."""
    return sql.SQL("{}.{}").format(sql.Identifier(PROJECT_SCHEMA), sql.Identifier(LOADED_TABLES))


def migrated_columns() -> sql.Composed:
    """The record of ``pipeline migrate``'s type changes: one row per column and change."""
    return sql.SQL("{}.{}").format(sql.Identifier(PROJECT_SCHEMA), sql.Identifier(MIGRATED_COLUMNS))


def ensure_project_schema(conn: psycopg.Connection) -> None:
    """Create schema ``pipeline`` and its bookkeeping tables if missing (in the caller's transaction)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_BOOTSTRAP_LOCK,))
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(PROJECT_SCHEMA)))
    conn.execute(sql.SQL(_LOADED_TABLES_DDL).format(table=loaded_tables()))
    conn.execute(sql.SQL(_MIGRATED_COLUMNS_DDL).format(table=migrated_columns()))


def _exists(conn: psycopg.Connection) -> bool:
    """Whether ``pipeline.loaded_tables`` exists (not before the first load; retention creates nothing)."""
    return conn.execute("SELECT to_regclass(%s)", (f"{PROJECT_SCHEMA}.{LOADED_TABLES}",)).fetchone()[0] is not None


# --- the load (target-analytics) ---


def record_load(
    conn: psycopg.Connection,
    *,
    day: dt.date,
    load_id: str,
    schema_name: str,
    table_name: str,
    load_schema: str,
    source: str,
    source_schema: str | None,
    file_key: str,
    file_sha256: str,
    manifest_rows: int,
    loaded_rows: int,
) -> None:
    """Record one loaded table and its counts, unpublished, for the publish step's reconciliation."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (pipeline_date, load_id, schema_name, table_name, load_schema, source, source_schema, "
            "file_key, file_sha256, manifest_rows, loaded_rows) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(loaded_tables()),
        (
            day,
            load_id,
            schema_name,
            table_name,
            load_schema,
            source,
            source_schema,
            file_key,
            file_sha256,
            manifest_rows,
            loaded_rows,
        ),
    )


def forget_unpublished(conn: psycopg.Connection, day: dt.date) -> set[str]:
    """Delete the rows of ``day``'s loads that were never published; returns their load schemas (to drop)."""
    rows = conn.execute(
        sql.SQL("DELETE FROM {} WHERE pipeline_date = %s AND published_at IS NULL RETURNING load_schema").format(
            loaded_tables()
        ),
        (day,),
    ).fetchall()
    return {name for (name,) in rows}


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


# --- the publish ---


def unpublished_load(conn: psycopg.Connection, day: dt.date) -> list[LoadedTable]:
    """The tables target-analytics loaded for ``day`` that no publish has attached yet."""
    rows = conn.execute(
        sql.SQL(
            "SELECT schema_name, table_name, load_schema, source, file_key, file_sha256, loaded_rows "
            "FROM {} WHERE pipeline_date = %s AND published_at IS NULL ORDER BY schema_name, table_name"
        ).format(loaded_tables()),
        (day,),
    ).fetchall()
    return [LoadedTable(*row) for row in rows]


def forget_replaced(conn: psycopg.Connection, day: dt.date) -> set[str]:
    """Delete the rows of ``day``'s published load, which a new one replaces; returns its load schemas (to drop)."""
    rows = conn.execute(
        sql.SQL("DELETE FROM {} WHERE pipeline_date = %s AND published_at IS NOT NULL RETURNING load_schema").format(
            loaded_tables()
        ),
        (day,),
    ).fetchall()
    return {name for (name,) in rows}


def mark_published(conn: psycopg.Connection, day: dt.date) -> None:
    """Record ``day``'s unpublished load as published now."""
    conn.execute(
        sql.SQL("UPDATE {} SET published_at = now() WHERE pipeline_date = %s AND published_at IS NULL").format(
            loaded_tables()
        ),
        (day,),
    )


# --- pipeline migrate, and the types an earlier day loads into ---


def unpublished_schema(conn: psycopg.Connection, day: dt.date, schema: str, table: str) -> str | None:
    """The load schema of ``day``'s unpublished load of analytics table ``schema.table``; None if there is none."""
    row = conn.execute(
        sql.SQL(
            "SELECT load_schema FROM {} WHERE pipeline_date = %s AND published_at IS NULL "
            "AND schema_name = %s AND table_name = %s"
        ).format(loaded_tables()),
        (day, schema, table),
    ).fetchone()
    return None if row is None else row[0]


def record_migration(
    conn: psycopg.Connection, table: tuple[str, str], column: str, old: ColumnType, new: ColumnType
) -> None:
    """Record that ``pipeline migrate`` changed ``table``'s column from type ``old`` to ``new`` (with its oid)."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {} "
            "(table_oid, schema_name, table_name, column_name, from_oid, from_typmod, to_oid, to_typmod) "
            "SELECT c.oid, n.nspname, c.relname, %s, %s, %s, %s, %s "
            "FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s"
        ).format(migrated_columns()),
        (column, old.oid, old.typmod, new.oid, new.typmod, *table),
    )


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


# --- retention (which runs before any load too: then there is nothing to read or forget) ---


def loaded_days(conn: psycopg.Connection) -> set[dt.date]:
    """Every day with bookkeeping rows, published or not."""
    if not _exists(conn):
        return set()
    query = sql.SQL("SELECT DISTINCT pipeline_date FROM {}").format(loaded_tables())
    return {day for (day,) in conn.execute(query).fetchall()}


def published_files(conn: psycopg.Connection, day: dt.date) -> set[tuple[str, str]]:
    """The (file key, sha256) of every table step 2 has published for ``day``."""
    if not _exists(conn):
        return set()
    query = sql.SQL(
        "SELECT file_key, file_sha256 FROM {} WHERE pipeline_date = %s AND published_at IS NOT NULL"
    ).format(loaded_tables())
    return set(conn.execute(query, (day,)).fetchall())


def forget_loads(conn: psycopg.Connection, day: dt.date) -> None:
    """Delete every bookkeeping row of ``day`` (its partitions and load schemas are the caller's to drop)."""
    if _exists(conn):
        conn.execute(sql.SQL("DELETE FROM {} WHERE pipeline_date = %s").format(loaded_tables()), (day,))
