"""Column types of a loaded table: resolved by the analytics database from the type's oid and typmod.

Step 1 records each column's analytics type as ``x-sql-type-oid`` and ``x-sql-typmod``
(and, for people, as ``x-sql-datatype``). The DDL uses ``format_type(oid, typmod)`` as
*this* database prints it, never the schema file's text, so a file cannot smuggle SQL
into ``CREATE TABLE``; a type that is not built into PostgreSQL (oid >= 16384: an enum,
a domain, an extension's type) would not exist here and is refused, as is a type that
cannot travel as itself (``pipeline.source.builtin_types``: ``reg*`` and the like, which step 1
sends as text) and a source column named like the day column the pipeline adds.

An earlier day (a rerun or backfill: its analytics table has later days) loads into
the table's types where the table moved on from the file's: a column the table widened
(``pipeline.warehouse.widening``) is created in the table's type, so the COPY reads the values
straight into it; a column ``pipeline migrate`` changed from the file's type is
converted after the COPY, as the migration converted the other days. Either way the
publish attaches the day as it is.
"""

from __future__ import annotations

import dataclasses
import typing as t

import psycopg

from pipeline.source.builtin_types import TEXT_OIDS
from pipeline.warehouse.bookkeeping import converts_into
from pipeline.warehouse.loads import DAY_COLUMN, FIRST_USER_OID
from pipeline.warehouse.widening import ColumnType, widens


@dataclasses.dataclass(frozen=True)
class ResolvedColumns:
    """Each column's type as the analytics database prints it, or what stands in the way.

    ``converted``: the columns to convert after the COPY, to the analytics table's type.
    """

    types: dict[str, str]
    problems: list[str]
    converted: dict[str, ColumnType] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PublishedTable:
    """The analytics table an earlier day loads into: its schema, name and column types."""

    schema: str
    table: str
    columns: dict[str, ColumnType]


def _declared(label: str, name: str, column: t.Mapping[str, t.Any]) -> tuple[int, int] | str:
    """The column's (oid, typmod), or the line that refuses it."""
    oid, typmod = column.get("x-sql-type-oid"), column.get("x-sql-typmod", -1)
    if name == DAY_COLUMN:
        return (
            f"table {label}, column {name!r}: the name is reserved for the day column the pipeline adds; "
            "rename the column at the source or leave the table out"
        )
    if not isinstance(oid, int) or not isinstance(typmod, int):
        return f"table {label}, column {name!r}: _schema.json gives no x-sql-type-oid/x-sql-typmod; rerun step 1"
    if oid >= FIRST_USER_OID:
        source_type = column.get("x-source-type") or column.get("x-sql-datatype") or oid
        return (
            f"table {label}, column {name!r}: type {source_type} (oid {oid}) is not built into PostgreSQL; "
            "step 1 must map it to a built-in type (rerun step 1 with the current version)"
        )
    return oid, typmod


def _into_published(
    conn: psycopg.Connection, published: PublishedTable | None, name: str, declared: ColumnType
) -> tuple[ColumnType, ColumnType | None]:
    """The type an earlier day's column is created in, and the type it is converted to after the COPY, if any."""
    target = published.columns.get(name) if published else None
    if published is None or target is None or target.same_type(declared):
        return declared, None
    if widens(declared, target):
        return target, None
    if converts_into(conn, published.schema, published.table, name, declared, target):
        return declared, target
    return declared, None  # a change the publish refuses, naming it


def resolve_columns(
    conn: psycopg.Connection,
    label: str,
    properties: t.Mapping[str, t.Any],
    published: PublishedTable | None,
) -> ResolvedColumns:
    """Resolve every column of one table (``label`` in refusals; ``published``: for an earlier day, its table)."""
    problems: list[str] = []
    declared: dict[str, tuple[int, int]] = {}
    for name, column in properties.items():
        result = _declared(label, name, column)
        if isinstance(result, str):
            problems.append(result)
        else:
            declared[name] = result
    types: dict[str, str] = {}
    converted: dict[str, ColumnType] = {}
    if declared:
        names = list(declared)
        rows = conn.execute(
            "SELECT format_type(t.oid, c.typmod), t.oid IS NOT NULL, "
            "t.oid = ANY(%(as_text)s::oid[]) OR (t.typlen = -1 AND t.typelem = ANY(%(as_text)s::oid[])) "
            "FROM unnest(%(oids)s::oid[], %(typmods)s::int[]) WITH ORDINALITY AS c(oid, typmod, i) "
            "LEFT JOIN pg_type t ON t.oid = c.oid ORDER BY c.i",
            {
                "as_text": sorted(TEXT_OIDS),
                "oids": [declared[n][0] for n in names],
                "typmods": [declared[n][1] for n in names],
            },
        ).fetchall()
        for name, (text, known, as_text) in zip(names, rows, strict=True):
            if as_text:
                problems.append(
                    f"table {label}, column {name!r}: type {text} cannot travel as itself (its values name objects "
                    "of the source or accept no input); rerun step 1 with the current version, which sends it as text"
                )
            elif known:
                created, converted_to = _into_published(conn, published, name, ColumnType(*declared[name], text))
                types[name] = created.name
                if converted_to is not None:
                    converted[name] = converted_to
            else:
                problems.append(
                    f"table {label}, column {name!r}: type oid {declared[name][0]} does not exist in the "
                    "analytics database; rerun step 1"
                )
    return ResolvedColumns(types=types, problems=problems, converted=converted)
