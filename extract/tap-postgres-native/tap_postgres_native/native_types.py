"""Discovered catalog entries, made exact from pg_catalog: which tables, their identity, each column's type.

Why: tap-postgres maps columns through SQLAlchemy to JSON types only, so a bytea column
looks like text, a smallint like a bigint, and an enum or a domain like nothing the
analytics database has. Each property gains the analytics type (``type_mapping``):
``x-sql-datatype`` (``format_type`` text), ``x-sql-type-oid`` and ``x-sql-typmod``, and,
where the source type differs, ``x-source-type`` (and ``x-domain-check`` for a domain).
Each entry's schema names its table exactly (top-level ``x-source-schema`` and
``x-source-table``): the stream name ``<schema>-<table>`` cannot be split back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipeline.core.errors import PipelineError, TransientPipelineError
from pipeline.core.names import table_folder
from pipeline.days.layout import SOURCE_SCHEMA_KEY, SOURCE_TABLE_KEY, data_file_name
from tap_postgres_native.source_catalog import SourceColumn, SourceTable
from tap_postgres_native.type_mapping import BYTEA_OID, PgType, UnknownTypeError, json_schema, resolve

BYTEA_ENCODING = "base16"


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


def table_problems(table: SourceTable, user: str) -> Iterator[str]:
    """One line per reason the table cannot be extracted, each with its fix."""
    name = table.quoted
    try:
        data_file_name(table_folder(table.schema, table.name))
    except PipelineError as exc:
        yield f"table {name}: {exc}"
    if not table.columns:
        yield f"table {name} has no columns, so it has nothing to extract: add a column or drop the table"
    elif not any(column.readable for column in table.columns.values()):
        yield f"table {name}: user {user} may not read it; GRANT SELECT ON {name} TO {user}, or drop it from the source"
    else:
        for column in table.columns.values():
            if not column.readable:
                yield (
                    f"table {name}, column {column.quoted}: user {user} may not read it; "
                    f"GRANT SELECT ({column.quoted}) ON {name} TO {user}"
                )


def schema_problems(wanted: list[str], existing: dict[str, tuple[str, bool]], user: str) -> Iterator[str]:
    """One line per selected schema that is missing or that the user may not use, each with its fix."""
    for name in wanted:
        if name not in existing:
            yield f"schema {name!r} of filter_schemas does not exist in the source: correct filter_schemas"
        elif not existing[name][1]:
            quoted = existing[name][0]
            yield f"schema {quoted}: user {user} may not use it; GRANT USAGE ON SCHEMA {quoted} TO {user}"


def annotate_property(
    prop: dict[str, Any], column: SourceColumn, types: dict[int, PgType], type_names: dict[tuple[int, int], str]
) -> None:
    """Give one column's JSON schema its analytics type, and its source type where that differs."""
    analytics = resolve(column.type_oid, column.typmod, types)
    if analytics.oid != column.type_oid:
        # Discovery described the source type; describe the values that will be sent.
        nullable = "null" in (prop.get("type") or [])
        for key in [key for key in prop if not key.startswith("x-")]:
            del prop[key]
        prop.update(json_schema(analytics.oid, types, nullable=nullable))
    elif analytics.oid == BYTEA_OID:
        prop["contentEncoding"] = BYTEA_ENCODING
    prop["x-sql-datatype"] = type_names[(analytics.oid, analytics.typmod)]
    prop["x-sql-type-oid"] = analytics.oid
    prop["x-sql-typmod"] = analytics.typmod
    if not analytics.is_source_type:
        prop["x-source-type"] = column.source_type
    if analytics.domain_checks:
        prop["x-domain-check"] = " ".join(analytics.domain_checks)


def _changed(table: str) -> TransientPipelineError:
    return TransientPipelineError(f"table {table} changed while the tap read the source's catalog; run the job again")


def analytics_type_pairs(tables: dict[tuple[str, str], SourceTable], types: dict[int, PgType]) -> set[tuple[int, int]]:
    """Every (oid, typmod) that some column gets in the analytics database (to be named by format_type)."""
    pairs = set()
    for table in tables.values():
        try:
            for column in table.columns.values():
                analytics = resolve(column.type_oid, column.typmod, types)
                pairs.add((analytics.oid, analytics.typmod))
        except UnknownTypeError as exc:
            raise _changed(table.quoted) from exc
    return pairs


def native_entries(
    entries: list[dict[str, Any]],
    tables: dict[tuple[str, str], SourceTable],
    types: dict[int, PgType],
    type_names: dict[tuple[int, int], str],
) -> list[dict[str, Any]]:
    """Keep base tables only, selected by default, named exactly, each column with its analytics type.

    Views, materialized views, foreign tables and partitions are absent from ``tables``
    and so are dropped. A table or column that discovery saw and pg_catalog did not (or
    the other way round) changed in between: the run fails and can simply be retried.
    """
    result = []
    seen = set()
    for entry in entries:
        key = (entry_schema_name(entry) or "", entry["table_name"])
        table = tables.get(key)
        if table is None:
            continue
        seen.add(key)
        properties = entry["schema"]["properties"]
        if list(properties) != list(table.columns):
            raise _changed(table.quoted)
        try:
            for name, prop in properties.items():
                annotate_property(prop, table.columns[name], types, type_names)
        except UnknownTypeError as exc:
            raise _changed(table.quoted) from exc
        entry["schema"][SOURCE_SCHEMA_KEY] = table.schema
        entry["schema"][SOURCE_TABLE_KEY] = table.name
        select_by_default(entry)
        result.append(entry)
    if missing := sorted(set(tables) - seen):
        raise _changed(tables[missing[0]].quoted)
    return result
