"""``pipeline migrate``: change an analytics table's column types to those of a day's load, keeping every day.

Why: the publish refuses a column type change it cannot follow by itself (anything
but a lossless widening, ``pipeline.warehouse.widening``): converting every earlier day's values
is a decision, and it may fail. This command makes it, for one table: each column whose
type in the day's load (left by the refused publish in its load schema) differs from
the analytics table's is changed to it with ``USING CAST(column AS new type)``, every
day's partition at once. A value that does not convert refuses the whole migration,
naming the first such value and its day; then nothing has changed. Each change is
recorded (``pipeline.warehouse.bookkeeping.record_migration``), so that an earlier day, rerun later with its
old type, is converted on its way in. The day then runs as usual.

It runs in one transaction that holds the lock every publish and prune takes
(``analytics.guard_day_change``) and the day's step-2 run lock, so it never races them.
"""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg import sql

from pipeline.core.commands import rerun_command
from pipeline.core.errors import PipelineError, first_line
from pipeline.jobs import STEP2_JOB
from pipeline.warehouse.bookkeeping import ensure_project_schema, record_migration, unpublished_schema
from pipeline.warehouse.day_change import guard_day_change, locks_in_time
from pipeline.warehouse.loads import DAY_COLUMN, alter_column_type, table_columns
from pipeline.warehouse.result_view import ensure_result_view, release_result_view
from pipeline.warehouse.widening import ColumnType

# How much of a value that does not convert a message shows.
_SHOWN_CHARACTERS = 80


def _load_schema(conn: psycopg.Connection, day: dt.date, schema: str, table: str) -> str:
    """The schema of the day's unpublished load of ``schema.table``, or the refusal that says how to get one."""
    load_schema = unpublished_schema(conn, day, schema, table)
    if load_schema is None:
        raise PipelineError(
            f"migrate {schema!r}.{table!r}: no load of {day} awaits publishing, so no new types to migrate to; "
            f"run the day first (its publish names the change): {rerun_command(STEP2_JOB, day)}"
        )
    return load_schema


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN_CHARACTERS else value[:_SHOWN_CHARACTERS] + "...")


def _first_unconvertible(
    conn: psycopg.Connection, table: tuple[str, str], column: str, old: ColumnType, new: ColumnType
) -> str | None:
    """The first value (by day) of the column that does not convert from ``old`` to ``new``, described; None if all do.

    Only run after the conversion failed. Each distinct value is cast as the migration
    casts it (its own type to the new one), in a savepoint of its own.
    """
    values = sql.SQL("SELECT {}, {}::text FROM {} WHERE {} IS NOT NULL ORDER BY 1").format(
        sql.Identifier(DAY_COLUMN), sql.Identifier(column), sql.Identifier(*table), sql.Identifier(column)
    )
    probe = sql.SQL("SELECT CAST(CAST(%s::text AS {}) AS {})").format(sql.SQL(old.name), sql.SQL(new.name))
    tried: set[str] = set()
    with conn.cursor(name="pipeline_migrate_values") as cursor:
        cursor.execute(values)
        for day, text in cursor:
            if text in tried:
                continue
            tried.add(text)
            try:
                with conn.transaction():
                    conn.execute(probe, (text,))
            except psycopg.DataError as exc:
                return f"value {_shown(text)} of {day} does not convert ({first_line(exc)})"
    return None


def _convert(conn: psycopg.Connection, table: tuple[str, str], column: str, old: ColumnType, new: ColumnType) -> None:
    """Change the column's type on every day's partition, or refuse naming the first value that does not convert."""
    label = f"{table[0]!r}.{table[1]!r}, column {column!r}"
    try:
        with conn.transaction():
            alter_column_type(conn, table, column, new)
    except psycopg.DataError as exc:
        why = _first_unconvertible(conn, table, column, old, new) or first_line(exc)
        raise PipelineError(
            f"migrate {label} from {old.name} to {new.name} refused: {why}; nothing changed "
            "(correct that value at the source and rerun its day, or drop the analytics table to reload every day)"
        ) from exc
    except (psycopg.errors.CannotCoerce, psycopg.errors.DatatypeMismatch) as exc:
        raise PipelineError(
            f"migrate {label} from {old.name} to {new.name} refused: PostgreSQL has no such conversion "
            f"({first_line(exc)}); nothing changed (drop the analytics table to reload every day)"
        ) from exc
    record_migration(conn, table, column, old, new)


def migrate_table(conn: psycopg.Connection, day: dt.date, schema: str, table: str, lock_timeout: str) -> list[str]:
    """Give analytics table ``schema.table`` the column types of ``day``'s load (see the module docstring).

    Returns one line per column changed, and why there is no result view if the change left none.
    """
    with locks_in_time(day, lock_timeout, "migrate"), conn.transaction():
        guard_day_change(conn, lock_timeout)
        ensure_project_schema(conn)
        load_schema = _load_schema(conn, day, schema, table)
        analytics = table_columns(conn, schema, table)
        changes = [
            (name, analytics[name], new)
            for name, new in table_columns(conn, load_schema, table).items()
            if name in analytics and not analytics[name].same_type(new)
        ]
        if changes:
            release_result_view(conn, schema, table)
        for name, old, new in changes:
            _convert(conn, (schema, table), name, old, new)
        note = ensure_result_view(conn)
    lines = [f"migrate {schema!r}.{table!r}: column {name!r} {old.name} -> {new.name}" for name, old, new in changes]
    if not changes:
        lines.append(f"migrate {schema!r}.{table!r}: its column types are already those of {day}'s load")
    return lines + ([f"migrate {schema!r}.{table!r}: {note}"] if note else [])
