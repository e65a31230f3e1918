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

_QUOTED_USER = sa.text("SELECT pg_catalog.quote_ident(current_user)")

_SET_SEARCH_PATH = sa.text("SELECT pg_catalog.set_config('search_path', 'pg_catalog', true)")

_EXISTING_SCHEMAS = sa.text(
    """
    SELECT nspname, pg_catalog.has_schema_privilege(oid, 'USAGE') AS usable,
           pg_catalog.quote_ident(nspname) AS quoted
      FROM pg_catalog.pg_namespace
     WHERE nspname = ANY(:schemas)
    """
)

# LEFT JOIN: a table without columns is listed too (with a NULL column), to be refused by name.
_BASE_TABLE_COLUMNS = sa.text(
    """
    SELECT n.nspname AS schema_name,
           c.relname AS table_name,
           pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS quoted_table,
           pg_catalog.has_table_privilege(c.oid, 'SELECT') AS table_readable,
           c.relkind = 'p' AS partitioned,
           a.attname AS column_name,
           pg_catalog.quote_ident(a.attname) AS quoted_column,
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

# Tables of the selected schemas that are not read as tables of their own and that nothing
# else of the run reads: partitions whose root lies in a schema that is not extracted,
# and foreign tables (their rows live on another server).
_SKIPPED_TABLES = sa.text(
    """
    SELECT n.nspname AS schema_name,
           c.relname AS table_name,
           pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS quoted_table,
           pg_catalog.quote_ident(rn.nspname) || '.' || pg_catalog.quote_ident(r.relname) AS quoted_root
      FROM pg_catalog.pg_class AS c
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
      LEFT JOIN pg_catalog.pg_class AS r ON c.relispartition AND r.oid = pg_catalog.pg_partition_root(c.oid)
      LEFT JOIN pg_catalog.pg_namespace AS rn ON rn.oid = r.relnamespace
     WHERE n.nspname = ANY(:schemas)
       AND ((c.relispartition AND c.relkind IN ('r', 'p', 'f') AND NOT rn.nspname = ANY(:schemas))
            OR (c.relkind = 'f' AND NOT c.relispartition))
     ORDER BY n.nspname, c.relname
    """
)

# Of the named tables, those whose rows row-level security would filter for the current
# user (``row_security_active``), each with whether its policies still let every row
# through: a permissive SELECT policy for the user that is ``USING (true)`` and no
# restrictive one that is anything else. Policies apply to a role the user has the
# privileges of (``pg_has_role ... USAGE``), or to PUBLIC (role 0).
_ROW_SECURITY = sa.text(
    """
    WITH named AS (
        SELECT c.oid, n.nspname, c.relname
          FROM unnest(CAST(:schemas AS text[]), CAST(:tables AS text[])) AS u(schema_name, table_name)
          JOIN pg_catalog.pg_namespace AS n ON n.nspname = u.schema_name
          JOIN pg_catalog.pg_class AS c ON c.relnamespace = n.oid AND c.relname = u.table_name
    ), policies AS (
        SELECT p.polrelid, p.polpermissive, pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS using_clause
          FROM pg_catalog.pg_policy AS p
         WHERE p.polrelid IN (SELECT oid FROM named)
           AND p.polcmd IN ('r', '*')
           AND EXISTS (SELECT 1 FROM unnest(p.polroles) AS r(role)
                        WHERE r.role = 0 OR pg_catalog.pg_has_role(r.role, 'USAGE'))
    )
    SELECT named.nspname AS schema_name,
           named.relname AS table_name,
           EXISTS (SELECT 1 FROM policies AS p
                    WHERE p.polrelid = named.oid AND p.polpermissive AND p.using_clause = 'true')
           AND NOT EXISTS (SELECT 1 FROM policies AS p
                            WHERE p.polrelid = named.oid AND NOT p.polpermissive AND p.using_clause <> 'true')
           AS every_row
      FROM named
     WHERE pg_catalog.row_security_active(named.oid)
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
    quoted: str  # as SQL quotes it, for the fix a message names
    type_oid: int
    typmod: int
    source_type: str  # format_type, qualified unless built in
    readable: bool


@dataclasses.dataclass
class SourceTable:
    """One base table (or partitioned parent) of a selected schema."""

    schema: str
    name: str
    quoted: str  # "schema"."table" as SQL quotes it, for the fix a message names
    readable: bool
    partitioned: bool  # read with its partitions; any other table ONLY (without tables inheriting from it)
    columns: dict[str, SourceColumn] = dataclasses.field(default_factory=dict)


def existing_schemas(connection: sa.Connection, schemas: list[str]) -> dict[str, tuple[str, bool]]:
    """Which of ``schemas`` the source has, each quoted as SQL quotes it and whether the user may use it."""
    rows = connection.execute(_EXISTING_SCHEMAS, {"schemas": schemas})
    return {row.nspname: (row.quoted, row.usable) for row in rows}


def quoted_user(connection: sa.Connection) -> str:
    """The user the tap reads as, quoted as SQL quotes it."""
    return connection.execute(_QUOTED_USER).scalar_one()


def read_tables(connection: sa.Connection, schemas: list[str]) -> dict[tuple[str, str], SourceTable]:
    """Every base table of ``schemas`` with its columns in order; call inside a transaction."""
    connection.execute(_SET_SEARCH_PATH)
    tables: dict[tuple[str, str], SourceTable] = {}
    for row in connection.execute(_BASE_TABLE_COLUMNS, {"schemas": schemas}):
        table = tables.setdefault(
            (row.schema_name, row.table_name),
            SourceTable(row.schema_name, row.table_name, row.quoted_table, row.table_readable, row.partitioned),
        )
        if row.column_name is not None:
            table.columns[row.column_name] = SourceColumn(
                row.column_name, row.quoted_column, row.type_oid, row.typmod, row.source_type, row.column_readable
            )
    return tables


@dataclasses.dataclass(frozen=True)
class SkippedTable:
    """A table of a selected schema that the run does not read: a partition of a parent outside them, or foreign."""

    schema: str
    name: str
    quoted: str
    root: str | None  # the partitioned table it belongs to (quoted), or None for a foreign table

    @property
    def reason(self) -> str:
        """Why it is not read, and how to read it."""
        if self.root is None:
            return "a foreign table (its rows live on another server); it is not extracted"
        return (
            f"a partition of {self.root}, whose schema is not extracted; add that schema to filter_schemas "
            "to extract it with all its partitions"
        )


def read_skipped_tables(connection: sa.Connection, schemas: list[str]) -> list[SkippedTable]:
    """Every table of ``schemas`` that the run does not read (see ``SkippedTable``), in name order."""
    rows = connection.execute(_SKIPPED_TABLES, {"schemas": schemas})
    return [SkippedTable(row.schema_name, row.table_name, row.quoted_table, row.quoted_root) for row in rows]


def read_row_security(connection: sa.Connection, tables: list[tuple[str, str]]) -> dict[tuple[str, str], bool]:
    """The tables of ``tables`` (schema, name) that row-level security would filter for the current user.

    Each maps to whether its policies let every row through nonetheless (see ``_ROW_SECURITY``).
    """
    params = {"schemas": [schema for schema, _ in tables], "tables": [name for _, name in tables]}
    return {(row.schema_name, row.table_name): row.every_row for row in connection.execute(_ROW_SECURITY, params)}


def read_types(connection: sa.Connection, oids: set[int]) -> dict[int, PgType]:
    """pg_type facts of ``oids`` and of every type they are built on (domain bases, array elements)."""
    types: dict[int, PgType] = {}
    requested: set[int] = set()
    wanted = set(oids)
    while wanted:
        requested |= wanted
        for row in connection.execute(_TYPES, {"oids": sorted(wanted)}):
            types[row.oid] = PgType(**{**row._mapping, "checks": tuple(row.checks)})
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
