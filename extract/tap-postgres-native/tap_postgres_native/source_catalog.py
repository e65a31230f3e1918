"""What the source's pg_catalog says about its base tables: columns, types, privileges.

Read in one transaction with ``search_path`` set to ``pg_catalog`` alone, so that
``format_type`` qualifies every type that is not built in (``public.mood``,
``public.citext``): that text is what ``_schema.json`` records as the source type.
Only ordinary and partitioned tables that are not themselves partitions are read:
a partitioned table's rows are all read through its parent, once.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from tap_postgres_native.type_mapping import PgType

_SET_SEARCH_PATH = sa.text("SELECT pg_catalog.set_config('search_path', 'pg_catalog', true)")

_EXISTING_SCHEMAS = sa.text("SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY(:schemas)")

# LEFT JOIN: a table without columns is listed too (with a NULL column), to be refused by name.
_BASE_TABLE_COLUMNS = sa.text(
    """
    SELECT n.nspname AS schema_name,
           c.relname AS table_name,
           pg_catalog.has_table_privilege(c.oid, 'SELECT') AS table_readable,
           a.attname AS column_name,
           a.atttypid::int8 AS type_oid,
           a.atttypmod AS typmod,
           pg_catalog.format_type(a.atttypid, a.atttypmod) AS source_type,
           pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT') AS column_readable
      FROM pg_catalog.pg_class AS c
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
      LEFT JOIN pg_catalog.pg_attribute AS a
        ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.relkind IN ('r', 'p')
       AND NOT c.relispartition
       AND n.nspname = ANY(:schemas)
     ORDER BY n.nspname, c.relname, a.attnum
    """
)

_TYPES = sa.text(
    """
    SELECT t.oid::int8 AS oid,
           t.typtype AS kind,
           t.typbasetype::int8 AS base_oid,
           t.typtypmod AS base_typmod,
           CASE WHEN t.typlen = -1 THEN t.typelem ELSE 0 END::int8 AS element_oid,
           t.typarray::int8 AS array_oid,
           t.typnotnull AS not_null,
           ARRAY(SELECT pg_catalog.pg_get_constraintdef(k.oid)
                   FROM pg_catalog.pg_constraint AS k
                  WHERE k.contypid = t.oid AND k.contype = 'c'
                  ORDER BY k.conname) AS checks
      FROM pg_catalog.pg_type AS t
     WHERE t.oid = ANY(CAST(:oids AS pg_catalog.oid[]))
    """
)

_FORMAT_TYPES = sa.text(
    """
    SELECT u.oid::int8 AS oid, u.typmod, pg_catalog.format_type(u.oid, u.typmod) AS name
      FROM unnest(CAST(:oids AS pg_catalog.oid[]), CAST(:typmods AS int4[])) AS u(oid, typmod)
    """
)


@dataclasses.dataclass(frozen=True)
class SourceColumn:
    """One column of a base table, as the source's catalog declares it."""

    name: str
    type_oid: int
    typmod: int
    source_type: str  # format_type, qualified unless built in
    readable: bool


@dataclasses.dataclass
class SourceTable:
    """One base table (or partitioned parent) of a selected schema."""

    schema: str
    name: str
    readable: bool
    columns: dict[str, SourceColumn] = dataclasses.field(default_factory=dict)


def existing_schemas(connection: sa.Connection, schemas: list[str]) -> set[str]:
    """Which of ``schemas`` the source has."""
    return {row.nspname for row in connection.execute(_EXISTING_SCHEMAS, {"schemas": schemas})}


def read_tables(connection: sa.Connection, schemas: list[str]) -> dict[tuple[str, str], SourceTable]:
    """Every base table of ``schemas`` with its columns in order; call inside a transaction."""
    connection.execute(_SET_SEARCH_PATH)
    tables: dict[tuple[str, str], SourceTable] = {}
    for row in connection.execute(_BASE_TABLE_COLUMNS, {"schemas": schemas}):
        table = tables.setdefault(
            (row.schema_name, row.table_name), SourceTable(row.schema_name, row.table_name, row.table_readable)
        )
        if row.column_name is not None:
            table.columns[row.column_name] = SourceColumn(
                row.column_name, row.type_oid, row.typmod, row.source_type, row.column_readable
            )
    return tables


def read_types(connection: sa.Connection, oids: set[int]) -> dict[int, PgType]:
    """pg_type facts of ``oids`` and of every type they are built on (domain bases, array elements)."""
    types: dict[int, PgType] = {}
    requested: set[int] = set()
    wanted = set(oids)
    while wanted:
        requested |= wanted
        for row in connection.execute(_TYPES, {"oids": sorted(wanted)}):
            types[row.oid] = PgType(
                oid=row.oid,
                kind=row.kind,
                base_oid=row.base_oid,
                base_typmod=row.base_typmod,
                element_oid=row.element_oid,
                array_oid=row.array_oid,
                not_null=row.not_null,
                checks=tuple(row.checks),
            )
        wanted = {
            oid
            for pg_type in types.values()
            for oid in (pg_type.base_oid, pg_type.element_oid, pg_type.array_oid)
            if oid and oid not in requested
        }
    return types


def format_types(connection: sa.Connection, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """``format_type`` of each (oid, typmod), as the analytics database will print it for a built-in type."""
    if not pairs:
        return {}
    ordered = sorted(pairs)
    rows = connection.execute(_FORMAT_TYPES, {"oids": [p[0] for p in ordered], "typmods": [p[1] for p in ordered]})
    return {(row.oid, row.typmod): row.name for row in rows}
