"""Publishing one loaded day: reconcile it with the step-1 receipts, then swap its partitions in.

Every analytics table of a source is partitioned by the day column, one partition per
day. target-analytics has already COPYed each of the day's files into a fresh table
(in a ``pipeline_...`` schema of its load, with the day column checked to be the day,
and the source's key plus the day as primary key), and recorded its row counts in
``pipeline.loaded_tables``. Publishing the day:

1. refuses it unless every table the step-1 receipts list was loaded from the very file
   they list, with exactly the manifest's row count (the refusal names the table and
   both counts), and nothing else was loaded;
2. refuses it if a column's type changed at the source in a way the analytics table
   cannot follow (naming table, column, both types and the ``pipeline migrate``
   command), or a table's key changed; the analytics table follows a lossless widening
   (``pipeline.widening``) by itself, and a day earlier than the table's latest loaded
   in a type the table was widened or migrated from (a rerun) is converted to it;
3. in one short transaction with ``lock_timeout`` set: creates missing parent tables,
   adds new source columns to the parent (and missing ones to the new partition),
   widens the parent's columns (which rewrites the earlier days only when the storage
   changes, e.g. ``smallint`` -> ``integer``; ``varchar(40)`` -> ``varchar(200)`` is a
   catalog change),
   detaches the day's old partitions (also of tables the source no longer has),
   attaches the new tables as the day's partitions, drops the old ones, and records
   the load as published.

Attaching moves no rows (the day's CHECK constraint spares the scan, the key's index
is adopted), so publishing costs no second write of the day; readers see the old day
or the new one, and other days are never touched. A lock not granted in time is a
``TransientPipelineError``: another session was using the table, a retry may pass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from pipeline.as_of import ensure_as_of, record_day
from pipeline.crashpoints import pause_point
from pipeline.errors import PipelineError, TransientPipelineError
from pipeline.jobs import STEP2_JOB
from pipeline.lfs import TableFile, migrate_command, rerun_command
from pipeline.names import analytics_schema
from pipeline.staging import (
    DAY_COLUMN,
    LOAD_SCHEMA_PREFIX,
    PROJECT_SCHEMA,
    alter_column_type,
    converts_into,
    ensure_project_schema,
    is_earlier_day,
    loaded_tables,
    table_columns,
)
from pipeline.widening import ColumnType, widens

RESULT_VIEW = "orders_with_details"
RESULT_QUERY = Path(__file__).resolve().parents[1] / "transform" / f"{RESULT_VIEW}.sql"
# The tables the result view joins: (analytics schema, table).
RESULT_TABLES = (("postgres", "orders"), ("csv", "order_details"))
DEFAULT_LOCK_TIMEOUT = "10s"
# One publish, prune or migration at a time: they would race on creating and altering the parents.
PUBLISH_LOCK = 7_261_845_301


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


def _unpublished_load(conn: psycopg.Connection, day: dt.date) -> list[LoadedTable]:
    rows = conn.execute(
        sql.SQL(
            "SELECT schema_name, table_name, load_schema, source, file_key, file_sha256, loaded_rows "
            "FROM {} WHERE pipeline_date = %s AND published_at IS NULL ORDER BY schema_name, table_name"
        ).format(loaded_tables()),
        (day,),
    ).fetchall()
    return [LoadedTable(*row) for row in rows]


def reconcile(day: dt.date, loaded: list[LoadedTable], receipts: list[TableFile]) -> None:
    """Refuse the day unless the load is exactly the receipts' files, row for row.

    Other files than the receipts list (a table more or less, another checksum) mean
    that step 1 published the day again after this load read it: a rerun of step 2
    loads the new files, so that refusal is transient. A row count that differs from
    the manifest's for the very file is damage: permanent.
    """
    by_file = {(table.source, table.file_key): table for table in loaded}
    raced, damaged = [], []
    for expected in receipts:
        label = f"{analytics_schema(expected.source, expected.source_schema)!r}.{expected.table!r}"
        table = by_file.pop((expected.source, expected.key), None)
        if table is None:
            raced.append(f"table {label} is in the step-1 receipts but was not loaded")
        elif table.file_sha256 != expected.sha256:
            raced.append(f"table {label} was loaded from another file than the receipt lists now")
        elif table.loaded_rows != expected.rows:
            damaged.append(f"table {label}: loaded {table.loaded_rows} rows, its manifest says {expected.rows}")
    raced += [f"table {table.label} was loaded but is not in the step-1 receipts" for table in by_file.values()]
    if problems := damaged + raced:
        message = f"refused to publish {day}: {'; '.join(problems)}; rerun: {rerun_command(STEP2_JOB, day)}"
        raise (PipelineError if damaged else TransientPipelineError)(message)


def _primary_key(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        """
        SELECT a.attname
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary
        ORDER BY array_position(i.indkey, a.attnum)
        """,
        (schema, table),
    ).fetchall()
    return [name for (name,) in rows]


def _partition_key(conn: psycopg.Connection, schema: str, table: str) -> str | None:
    """``LIST (pipeline_date)`` for a parent of ours, ``""`` for any other relation, None if there is none."""
    row = conn.execute(
        """
        SELECT CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) ELSE '' END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s
        """,
        (schema, table),
    ).fetchone()
    return row[0] if row else None


@dataclasses.dataclass(frozen=True)
class Partition:
    """One day's partition of a parent table."""

    parent_schema: str
    parent: str
    schema: str
    table: str


def day_partitions(conn: psycopg.Connection, day: dt.date) -> list[Partition]:
    """Every partition of ``day`` that a publish attached (those in ``pipeline_...`` schemas).

    The bound is compared as the server prints both sides, whatever its ``DateStyle``.
    """
    rows = conn.execute(
        """
        SELECT pn.nspname, p.relname, cn.nspname, c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_namespace cn ON cn.oid = c.relnamespace
        JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_namespace pn ON pn.oid = p.relnamespace
        WHERE c.relispartition AND starts_with(cn.nspname, %s)
          AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES IN (%%L)', %s::date)
        ORDER BY 1, 2
        """,
        (LOAD_SCHEMA_PREFIX, day),
    ).fetchall()
    return [Partition(*row) for row in rows]


def _follows(
    conn: psycopg.Connection, day: dt.date, table: LoadedTable, column: str, analytics: ColumnType, loaded: ColumnType
) -> bool:
    """Whether the day's column type and the analytics table's can meet.

    The analytics table is widened to a day's wider type. A day earlier than the
    table's latest (a rerun, a backfill) whose type the table has since been widened
    or migrated from is converted to the table's type; for a newer day that would be
    the source narrowing or changing the type, which is refused.
    """
    if analytics.same_type(loaded) or widens(analytics, loaded):
        return True
    return is_earlier_day(conn, day, table.schema_name, table.table_name) and converts_into(
        conn, table.schema_name, table.table_name, column, loaded, analytics
    )


def _check_table(conn: psycopg.Connection, day: dt.date, table: LoadedTable) -> list[str]:
    """What stops ``table`` from becoming a partition of its existing parent (nothing if there is none)."""
    partition_key = _partition_key(conn, table.schema_name, table.table_name)
    if partition_key is None:
        return []
    if partition_key != f"LIST ({DAY_COLUMN})":
        return [
            f"table {table.label} exists in the analytics database but is not partitioned by {DAY_COLUMN}; "
            "rename or drop it"
        ]
    parent = table_columns(conn, table.schema_name, table.table_name)
    problems = [
        f"table {table.label}, column {name!r}: the source now has type {new.name}, the analytics table "
        f"{parent[name].name}, which is no lossless widening; migrate the analytics table (every day's values "
        f"converted): {migrate_command(day, table.schema_name, table.table_name)}"
        for name, new in table_columns(conn, table.load_schema, table.table_name).items()
        if name in parent and not _follows(conn, day, table, name, parent[name], new)
    ]
    old_key = _primary_key(conn, table.schema_name, table.table_name)
    new_key = _primary_key(conn, table.load_schema, table.table_name)
    if old_key != new_key:
        problems.append(
            f"table {table.label}: its key changed from {old_key} to {new_key}; "
            "give the analytics table that primary key by hand, or drop it to reload every day"
        )
    return problems


def _create_parent(conn: psycopg.Connection, table: LoadedTable) -> None:
    """The parent of a new table: the loaded table's columns and key, partitioned by day."""
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(table.schema_name)))
    columns = table_columns(conn, table.load_schema, table.table_name)
    definitions = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(name), sql.SQL(column.name), sql.SQL(" NOT NULL" if name == DAY_COLUMN else "")
        )
        for name, column in columns.items()
    ]
    if key := _primary_key(conn, table.load_schema, table.table_name):
        definitions.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, key))))
    conn.execute(
        sql.SQL("CREATE TABLE {} ({}) PARTITION BY LIST ({})").format(
            sql.Identifier(table.schema_name, table.table_name),
            sql.SQL(", ").join(definitions),
            sql.Identifier(DAY_COLUMN),
        )
    )


def _align_columns(conn: psycopg.Connection, table: LoadedTable) -> None:
    """Give the parent the source's new columns and wider types, and the new partition the parent's other columns.

    A type change that reaches here is one ``_check_table`` let through: the parent
    widened to the day's type, or the day's table converted to the parent's (which
    target-analytics has done already, unless the parent changed since the load).
    """
    parent = table_columns(conn, table.schema_name, table.table_name)
    loaded = table_columns(conn, table.load_schema, table.table_name)
    for target, source, missing in (
        ((table.schema_name, table.table_name), loaded, set(loaded) - set(parent)),
        ((table.load_schema, table.table_name), parent, set(parent) - set(loaded)),
    ):
        for name in sorted(missing, key=list(source).index):
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    sql.Identifier(*target), sql.Identifier(name), sql.SQL(source[name].name)
                )
            )
    for name, day_type in loaded.items():
        analytics_type = parent.get(name, day_type)
        if analytics_type.same_type(day_type):
            continue
        if widens(analytics_type, day_type):
            release_result_view(conn, table.schema_name, table.table_name)
            alter_column_type(conn, (table.schema_name, table.table_name), name, day_type)
        else:
            alter_column_type(conn, (table.load_schema, table.table_name), name, analytics_type)


def release_result_view(conn: psycopg.Connection, schema: str, table: str) -> None:
    """Drop the result view before a column type of a table it reads changes; the publish creates it again.

    PostgreSQL refuses to change the type of a column a view uses.
    """
    if (schema, table) in RESULT_TABLES:
        conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(PROJECT_SCHEMA, RESULT_VIEW)))


def ensure_result_view(conn: psycopg.Connection) -> str | None:
    """Create (or, when the query changed, replace) the result view once both its tables exist.

    Returns why there is no view, if there is none: a source may have an ``orders``
    table without the columns the query joins; that fails no publish.
    """
    if missing := [f"{s}.{t}" for s, t in RESULT_TABLES if _partition_key(conn, s, t) is None]:
        return f"no {PROJECT_SCHEMA}.{RESULT_VIEW} view yet: no table {', '.join(missing)}"
    query = RESULT_QUERY.read_text(encoding="utf-8")
    version = hashlib.sha256(query.encode()).hexdigest()
    view = sql.Identifier(PROJECT_SCHEMA, RESULT_VIEW)
    current = conn.execute(
        "SELECT obj_description(to_regclass(%s), 'pg_class')", (f"{PROJECT_SCHEMA}.{RESULT_VIEW}",)
    ).fetchone()
    if current and current[0] == version:
        return None
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE OR REPLACE VIEW {} AS {}").format(view, sql.SQL(query)))
            conn.execute(sql.SQL("COMMENT ON VIEW {} IS {}").format(view, sql.Literal(version)))
    except (psycopg.errors.UndefinedColumn, psycopg.errors.DatatypeMismatch) as exc:
        reason = str(exc).strip().splitlines()[0]
        return f"no {PROJECT_SCHEMA}.{RESULT_VIEW} view: {RESULT_QUERY.name} does not fit the tables ({reason})"
    return None


@dataclasses.dataclass(frozen=True)
class Published:
    """What a publish did: rows per analytics table, and why there is no result view, if there is none."""

    rows: dict[str, int]
    note: str | None


@contextmanager
def locks_in_time(day: dt.date, lock_timeout: str, action: str = "publish") -> Iterator[None]:
    """Turn a lock not granted within ``lock_timeout`` (or a lost server) into a transient failure."""
    try:
        yield
    except psycopg.errors.LockNotAvailable as exc:
        raise TransientPipelineError(
            f"{action} of {day}: a table was locked by another session for longer than lock_timeout "
            f"{lock_timeout} (a long query on it?); nothing changed, retry later"
        ) from exc
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TransientPipelineError(f"{action} of {day}: the analytics database went away: {reason}") from exc


def guard_day_change(conn: psycopg.Connection, lock_timeout: str) -> None:
    """Begin changing a day's partitions: ``lock_timeout`` for this transaction, and its one-at-a-time lock.

    Publishes and prunes of any day alter the same parent tables, so they take turns; a
    ``lock_timeout`` that is no PostgreSQL duration is refused in one line.
    """
    try:
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
    except psycopg.errors.InvalidParameterValue as exc:
        raise PipelineError(
            f"PIPELINE_LOCK_TIMEOUT={lock_timeout!r} is not a PostgreSQL duration; use e.g. 10s"
        ) from exc
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (PUBLISH_LOCK,))


def detach_day(conn: psycopg.Connection, day: dt.date) -> list[Partition]:
    """Detach every partition of ``day`` from its parent; returns them (their schemas are the caller's to drop)."""
    partitions = day_partitions(conn, day)
    for partition in partitions:
        conn.execute(
            sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                sql.Identifier(partition.parent_schema, partition.parent),
                sql.Identifier(partition.schema, partition.table),
            )
        )
    return partitions


def _swap_partitions(conn: psycopg.Connection, day: dt.date, loaded: list[LoadedTable]) -> None:
    """Detach the day's old partitions, attach the loaded tables, drop the old ones and mark the load published."""
    old = detach_day(conn, day)
    for table in loaded:
        if _partition_key(conn, table.schema_name, table.table_name) is None:
            _create_parent(conn, table)
        else:
            _align_columns(conn, table)
        conn.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
                sql.Identifier(table.schema_name, table.table_name),
                sql.Identifier(table.load_schema, table.table_name),
                sql.Literal(day),
            )
        )
    replaced = conn.execute(
        sql.SQL("DELETE FROM {} WHERE pipeline_date = %s AND published_at IS NOT NULL RETURNING load_schema").format(
            loaded_tables()
        ),
        (day,),
    ).fetchall()
    for schema in sorted({p.schema for p in old} | {name for (name,) in replaced}):
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    conn.execute(
        sql.SQL("UPDATE {} SET published_at = now() WHERE pipeline_date = %s AND published_at IS NULL").format(
            loaded_tables()
        ),
        (day,),
    )


def publish_day(
    conn: psycopg.Connection,
    day: dt.date,
    receipts: list[TableFile],
    lock_timeout: str,
    check: Callable[[psycopg.Connection], None],
) -> Published:
    """Publish the day's load (see the module docstring).

    ``check`` runs first in the publish's transaction (``pipeline.locks.check_run_holds``:
    the run still holds the day, and no newer run can claim it before the commit).
    """
    with locks_in_time(day, lock_timeout), conn.transaction():
        guard_day_change(conn, lock_timeout)
        check(conn)
        ensure_project_schema(conn)
        loaded = _unpublished_load(conn, day)
        if not loaded and receipts:
            raise PipelineError(f"nothing loaded for {day} awaits publishing; rerun: {rerun_command(STEP2_JOB, day)}")
        reconcile(day, loaded, receipts)
        if problems := [line for table in loaded for line in _check_table(conn, day, table)]:
            raise PipelineError(f"refused to publish {day}: {'; '.join(problems)}")
        _swap_partitions(conn, day, loaded)
        ensure_as_of(conn)
        record_day(conn, day, receipts)
        note = ensure_result_view(conn)
        pause_point("analytics-publish")
    return Published({table.label: table.loaded_rows for table in loaded}, note)
