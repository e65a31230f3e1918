"""A table's state as of a day, the same way in every replication mode.

A day's partition of an analytics table holds either the table's whole state (a
``FULL_TABLE`` table, the first day of an incremental one) or the changes of the day
(an ``INCREMENTAL`` or ``LOG_BASED`` window that starts at the previous day's
bookmark: ``pipeline.days.bookmarks``). ``pipeline.table_days`` records which, per table
and day, from the day's receipts; ``pipeline.as_of(NULL::schema.table, day)``
(``transform/as_of.sql``) reads the state from it: the day's partition when it holds
the state, else the latest version of each primary key since the latest whole state,
deleted keys gone (``_pipeline_op = 'delete'``, which ``LOG_BASED`` days carry). The
result view reads ``orders`` through it, so it stays right in any mode.

Retention folds the days it prunes into a *base* (``fold_into_base``): when a pruned
day's partition of a table is the whole-state reference of a later day that holds
changes, the state as of that pruned day is written into a new partition for that
day, in a schema ``pipeline_base_{yyyymmdd}_{n}`` that the prune does not count as a
day to remove, and the previous base is dropped: "as of" every kept day still holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets

import psycopg
from psycopg import sql

from pipeline.core.names import analytics_schema
from pipeline.days.bookmarks import CHANGES, STATE, holds
from pipeline.days.folder import TableFile
from pipeline.warehouse.loads import DAY_COLUMN, PROJECT_SCHEMA, TRANSFORM_DIR

TABLE_DAYS = "table_days"
AS_OF_FUNCTION = "as_of"
AS_OF_SQL = TRANSFORM_DIR / f"{AS_OF_FUNCTION}.sql"
BASE_SCHEMA_PREFIX = "pipeline_base_"

_TABLE_DAYS_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    schema_name text NOT NULL,
    table_name text NOT NULL,
    pipeline_date date NOT NULL,
    holds text NOT NULL CHECK (holds IN ('state', 'changes')),
    PRIMARY KEY (schema_name, table_name, pipeline_date)
)
"""


def table_days() -> sql.Composed:
    """The record of what each day's partition of each table holds (see the module docstring)."""
    return sql.SQL("{}.{}").format(sql.Identifier(PROJECT_SCHEMA), sql.Identifier(TABLE_DAYS))


def ensure_as_of(conn: psycopg.Connection) -> None:
    """Create ``pipeline.table_days``, and ``pipeline.as_of`` when missing or its text changed."""
    conn.execute(sql.SQL(_TABLE_DAYS_DDL).format(table=table_days()))
    text = AS_OF_SQL.read_text(encoding="utf-8")
    version = hashlib.sha256(text.encode()).hexdigest()
    signature = f"{PROJECT_SCHEMA}.{AS_OF_FUNCTION}(anyelement, date)"
    current = conn.execute("SELECT obj_description(to_regprocedure(%s), 'pg_proc')", (signature,)).fetchone()
    if current and current[0] == version:
        return
    conn.execute(sql.SQL(text))  # type: ignore[arg-type]  # the project's own file, no input in it
    conn.execute(
        sql.SQL("COMMENT ON FUNCTION {}(anyelement, date) IS {}").format(
            sql.Identifier(PROJECT_SCHEMA, AS_OF_FUNCTION), sql.Literal(version)
        )
    )


def record_day(conn: psycopg.Connection, day: dt.date, receipts: list[TableFile]) -> None:
    """Record what ``day``'s partition of each table holds, from the receipts the day was published from."""
    conn.execute(sql.SQL("DELETE FROM {} WHERE pipeline_date = %s").format(table_days()), (day,))
    with conn.cursor() as cursor:
        cursor.executemany(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s)").format(table_days()),
            [
                (analytics_schema(table.source, table.source_schema), table.table, day, holds(table.replication))
                for table in receipts
            ],
        )


@dataclasses.dataclass(frozen=True)
class Base:
    """A table's state as of a pruned day, written into ``schema`` to become that day's partition."""

    parent_schema: str
    parent: str
    schema: str


def fold_into_base(conn: psycopg.Connection, day: dt.date) -> list[Base]:
    """Before ``day``'s partitions are pruned, write the state as of ``day`` of each table a later change day needs.

    Runs in the prune's transaction, before the day is detached; ``attach_bases``
    attaches them once the day's partitions are gone. The tables' previous bases are
    dropped: each table has at most one.
    """
    if not _has_table_days(conn):
        return []
    needed = conn.execute(
        sql.SQL(
            """
            SELECT t.schema_name, t.table_name FROM {days} AS t
            WHERE t.pipeline_date = %(day)s
              AND (SELECT n.holds FROM {days} AS n
                   WHERE (n.schema_name, n.table_name) = (t.schema_name, t.table_name) AND n.pipeline_date > %(day)s
                   ORDER BY n.pipeline_date LIMIT 1) = %(changes)s
            ORDER BY 1, 2
            """
        ).format(days=table_days()),
        {"day": day, "changes": CHANGES},
    ).fetchall()
    bases = []
    for ordinal, (schema, table) in enumerate(needed):
        base = Base(schema, table, f"{BASE_SCHEMA_PREFIX}{day:%Y%m%d}_{secrets.token_hex(4)}_{ordinal}")
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(base.schema)))
        name = sql.Identifier(base.schema, table)
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
                name, sql.Identifier(schema, table)
            )
        )
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT * FROM {}(NULL::{}, %s)").format(
                name, sql.Identifier(PROJECT_SCHEMA, AS_OF_FUNCTION), sql.Identifier(schema, table)
            ),
            (day,),
        )
        conn.execute(sql.SQL("UPDATE {} SET {} = %s").format(name, sql.Identifier(DAY_COLUMN)), (day,))
        _drop_older_bases(conn, schema, table, keep=base.schema)
        bases.append(base)
    return bases


def attach_bases(conn: psycopg.Connection, day: dt.date, bases: list[Base]) -> None:
    """Attach the bases ``fold_into_base`` wrote as ``day``'s partitions, and record them as whole states."""
    for base in bases:
        conn.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
                sql.Identifier(base.parent_schema, base.parent),
                sql.Identifier(base.schema, base.parent),
                sql.Literal(day),
            )
        )
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s)").format(table_days()),
            (base.parent_schema, base.parent, day, STATE),
        )


def forget_day(conn: psycopg.Connection, day: dt.date) -> None:
    """Remove ``day``'s records (its partitions are being dropped)."""
    if _has_table_days(conn):
        conn.execute(sql.SQL("DELETE FROM {} WHERE pipeline_date = %s").format(table_days()), (day,))


def _has_table_days(conn: psycopg.Connection) -> bool:
    """Whether ``pipeline.table_days`` exists (not before the first publish that has it)."""
    return conn.execute("SELECT to_regclass(%s)", (f"{PROJECT_SCHEMA}.{TABLE_DAYS}",)).fetchone()[0] is not None


def _drop_older_bases(conn: psycopg.Connection, schema: str, table: str, keep: str) -> None:
    """Detach and drop the table's earlier base (a partition in a ``pipeline_base_...`` schema) and its record."""
    rows = conn.execute(
        """
        SELECT cn.nspname
        FROM pg_inherits i
        JOIN pg_namespace cn ON cn.oid = (SELECT relnamespace FROM pg_class WHERE oid = i.inhrelid)
        JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_namespace pn ON pn.oid = p.relnamespace
        WHERE pn.nspname = %s AND p.relname = %s AND starts_with(cn.nspname, %s) AND cn.nspname <> %s
        """,
        (schema, table, BASE_SCHEMA_PREFIX, keep),
    ).fetchall()
    for (base_schema,) in rows:
        conn.execute(
            sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                sql.Identifier(schema, table), sql.Identifier(base_schema, table)
            )
        )
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(base_schema)))
        old_day = dt.datetime.strptime(base_schema.removeprefix(BASE_SCHEMA_PREFIX)[:8], "%Y%m%d").date()
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE schema_name = %s AND table_name = %s AND pipeline_date = %s").format(
                table_days()
            ),
            (schema, table, old_day),
        )
