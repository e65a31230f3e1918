"""The source's own column types, read from pg_catalog, added to discovered catalog entries.

Why: tap-postgres maps columns through SQLAlchemy to JSON types only, so a bytea column
looks like text and a smallint like a bigint. The loader downstream needs the real type
to create identical columns, so each property gains ``x-sql-datatype`` (exactly what
``pg_catalog.format_type`` prints) and bytea columns ``contentEncoding: base16`` (the
SDK emits bytes as hex).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

# Ordinary and partitioned tables; partitions are skipped because their rows are read
# through the partitioned parent (as information_schema's BASE TABLE would double them).
_BASE_TABLE_COLUMNS = sa.text(
    """
    SELECT n.nspname AS schema_name,
           c.relname AS table_name,
           a.attname AS column_name,
           pg_catalog.format_type(a.atttypid, a.atttypmod) AS sql_datatype,
           a.atttypid = 'pg_catalog.bytea'::pg_catalog.regtype AS is_bytea
      FROM pg_catalog.pg_attribute AS a
      JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')
       AND NOT c.relispartition
       AND n.nspname = ANY(:schemas)
       AND a.attnum > 0
       AND NOT a.attisdropped
     ORDER BY n.nspname, c.relname, a.attnum
    """
)

BYTEA_ENCODING = "base16"

ColumnTypes = dict[tuple[str, str], dict[str, tuple[str, bool]]]
"""(schema, table) -> column -> (format_type text, is bytea), for base tables only."""


def read_column_types(connection: sa.Connection, schemas: list[str]) -> ColumnTypes:
    """Read the native type of every column of every base table in ``schemas``."""
    types: ColumnTypes = {}
    for row in connection.execute(_BASE_TABLE_COLUMNS, {"schemas": schemas}):
        types.setdefault((row.schema_name, row.table_name), {})[row.column_name] = (row.sql_datatype, row.is_bytea)
    return types


def stream_metadata(entry: dict[str, Any]) -> dict[str, Any]:
    """Return the stream-level metadata (empty breadcrumb) of a catalog entry."""
    for item in entry.get("metadata", []):
        if item.get("breadcrumb") == []:
            return item.setdefault("metadata", {})
    item = {"breadcrumb": [], "metadata": {}}
    entry.setdefault("metadata", []).append(item)
    return item["metadata"]


def entry_schema_name(entry: dict[str, Any]) -> str | None:
    """Return the database schema of a catalog entry, from its stream-level metadata."""
    return stream_metadata(entry).get("schema-name")


def select_by_default(entry: dict[str, Any]) -> None:
    """Mark the stream selected unless a catalog says otherwise.

    Why: the SDK treats a stream without selection metadata as deselected, so a run
    without a catalog (Meltano passes none: the plugin has no ``catalog`` capability)
    would sync nothing. Every discovered base table is meant to be extracted.
    """
    stream_metadata(entry)["selected-by-default"] = True


def annotate_property(prop: dict[str, Any], sql_datatype: str, *, is_bytea: bool) -> None:
    """Add the native type (and the hex encoding of bytea) to one column's JSON schema."""
    prop["x-sql-datatype"] = sql_datatype
    if is_bytea:
        prop["contentEncoding"] = BYTEA_ENCODING


def native_entries(entries: list[dict[str, Any]], types: ColumnTypes) -> list[dict[str, Any]]:
    """Keep base tables only, selected by default, with each column annotated with its native type.

    Views, materialized views, foreign tables and partitions are absent from ``types``
    and so are dropped. A column that the catalog has but pg_catalog does not is an
    error: the two were read at different moments and the table changed in between.
    """
    result = []
    for entry in entries:
        columns = types.get((entry_schema_name(entry) or "", entry["table_name"]))
        if columns is None:
            continue
        for name, prop in entry["schema"]["properties"].items():
            if name not in columns:
                raise RuntimeError(
                    f"column {name!r} of {entry['tap_stream_id']} is not in pg_catalog: "
                    "the table changed during discovery, run again"
                )
            sql_datatype, is_bytea = columns[name]
            annotate_property(prop, sql_datatype, is_bytea=is_bytea)
        entry["schema"]["x-source-schema"] = entry_schema_name(entry)
        entry["schema"]["x-source-table"] = entry["table_name"]
        select_by_default(entry)
        result.append(entry)
    return result
