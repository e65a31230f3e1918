"""The analytics tables' day partitions: checked, aligned, swapped."""

from __future__ import annotations

import dataclasses
import datetime as dt

import psycopg
from psycopg import sql

from pipeline.core.commands import migrate_command
from pipeline.warehouse.bookkeeping import LoadedTable, converts_into, forget_replaced, is_earlier_day, mark_published
from pipeline.warehouse.catalog import partition_key, primary_key
from pipeline.warehouse.loads import DAY_COLUMN, LOAD_SCHEMA_PREFIX, alter_column_type, table_columns
from pipeline.warehouse.result_view import release_result_view
from pipeline.warehouse.widening import ColumnType, widens


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


def check_table(conn: psycopg.Connection, day: dt.date, table: LoadedTable) -> list[str]:
    """What stops ``table`` from becoming a partition of its existing parent (nothing if there is none)."""
    partitioning = partition_key(conn, table.schema_name, table.table_name)
    if partitioning is None:
        return []
    if partitioning != f"LIST ({DAY_COLUMN})":
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
    old_key = primary_key(conn, table.schema_name, table.table_name)
    new_key = primary_key(conn, table.load_schema, table.table_name)
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
    if key := primary_key(conn, table.load_schema, table.table_name):
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

    A type change that reaches here is one ``check_table`` let through: the parent
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


def swap_partitions(conn: psycopg.Connection, day: dt.date, loaded: list[LoadedTable]) -> None:
    """Detach the day's old partitions, attach the loaded tables, drop the old ones and mark the load published."""
    old = detach_day(conn, day)
    for table in loaded:
        if partition_key(conn, table.schema_name, table.table_name) is None:
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
    replaced = forget_replaced(conn, day)
    for schema in sorted({p.schema for p in old} | replaced):
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    mark_published(conn, day)
