"""A LOG_BASED table's day file: its changed keys' rows as the day's snapshot holds them, or the whole table.

Every row starts with two columns (``pipeline.source.log_based``): ``_pipeline_op`` (the
key's net operation in the day: ``insert``, ``update``, ``delete``; ``snapshot`` for
a day that holds the whole table) and ``_pipeline_lsn`` (the commit LSN of the
key's last change; on a whole day, the day's end). Then the table's own columns,
cast as a ``FULL_TABLE`` copy casts them (``CopyStream``), so a value reads the same
whatever the mode; a deleted key has its key columns and NULL elsewhere.

The changed keys (``log_window``) go to the server as one JSON parameter; each is
turned into the key's own types by ``json_populate_record`` on the table's row type
and joined to the table (by its primary key's index), in the snapshot whose point is
the window's end: the row found is the key's last version, no row means deleted.
The rows come out in the order of the keys' last changes, so a rerun over the same
window writes the same bytes.

A day holds the whole table (``snapshot``) on the table's first day (no previous
end: the window has no start) and on a day its table was truncated: the log does not
say which rows a ``TRUNCATE`` removed.
"""

from __future__ import annotations

import json
import typing as t

from psycopg2 import sql

from pipeline.days.layout import SOURCE_SCHEMA_KEY, SOURCE_TABLE_KEY
from pipeline.source.log_based import DELETE_OP, INSERT_OP, LSN_COLUMN, OP_COLUMN, SNAPSHOT_OP, UPDATE_OP
from tap_postgres_native.copy_stream import CopyStream, column_cast
from tap_postgres_native.log_window import TableChanges
from tap_postgres_native.pgoutput import format_lsn
from tap_postgres_native.replication import source

# The two columns every LOG_BASED day file starts with, as discovery adds them to the table's schema.
LOG_PROPERTIES: dict[str, dict[str, t.Any]] = {
    OP_COLUMN: {"type": ["string"], "x-sql-datatype": "text", "x-sql-type-oid": 25, "x-sql-typmod": -1},
    LSN_COLUMN: {"type": ["string"], "x-sql-datatype": "pg_lsn", "x-sql-type-oid": 3220, "x-sql-typmod": -1},
}


def add_log_columns(entry: dict[str, t.Any]) -> None:
    """Put the two columns first in a LOG_BASED table's catalog entry (schema and selection metadata)."""
    schema = entry["schema"]
    schema["properties"] = {**LOG_PROPERTIES, **schema["properties"]}
    entry["metadata"] = [
        *({"breadcrumb": ["properties", name], "metadata": {"inclusion": "automatic"}} for name in LOG_PROPERTIES),
        *entry.get("metadata", []),
    ]


class LogStream(CopyStream):
    """A table read ``LOG_BASED``: one COPY in the run's snapshot, of the changed keys or of the whole table."""

    def _item(self, name: str, prop: t.Mapping[str, t.Any], alias: str) -> sql.Composable:
        """One table column of the select list, from ``alias``, cast as ``CopyStream`` casts it."""
        column = sql.Identifier(alias, name)
        cast = column_cast(prop)
        if cast is None:
            return sql.SQL("{} AS {}").format(column, sql.Identifier(name))
        return sql.SQL("{}::" + cast + " AS {}").format(column, sql.Identifier(name))

    def copy_statement(self) -> sql.Composed:
        """The day's COPY: the whole table (first day, truncated) or its changed keys (module docstring)."""
        key = (self.schema[SOURCE_SCHEMA_KEY], self.schema[SOURCE_TABLE_KEY])
        table = self.connector.source_tables[key]  # type: ignore[attr-defined]
        window = self.connector.windows[key]  # type: ignore[attr-defined]
        changes: TableChanges | None = self.connector.log_changes.get(key)  # type: ignore[attr-defined]
        properties = {n: p for n, p in self.get_selected_schema()["properties"].items() if n not in LOG_PROPERTIES}
        op, lsn = sql.Identifier(OP_COLUMN), sql.Identifier(LSN_COLUMN)
        if changes is None:
            items = [self._item(name, prop, "t") for name, prop in properties.items()]
            return sql.SQL("COPY (SELECT {} AS {}, {}::pg_lsn AS {}, {} FROM {} AS t) TO STDOUT (FORMAT csv)").format(
                sql.Literal(SNAPSHOT_OP), op, sql.Literal(window.end), lsn, sql.SQL(", ").join(items), source(table)
            )
        primary = list(self.catalog_entry.get("key_properties") or [])
        items = [self._item(name, prop, "k" if name in primary else "t") for name, prop in properties.items()]
        keys = [
            {"key": dict(zip(primary, values, strict=True)), "lsn": format_lsn(change.lsn), "existed": change.existed}
            for values, change in changes.keys.items()
        ]
        joined = sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier("t", name), sql.Identifier("k", name)) for name in primary
        )
        return sql.SQL(
            "COPY (SELECT CASE WHEN t.tableoid IS NULL THEN {} WHEN (c.change->>'existed')::boolean "
            "THEN {} ELSE {} END AS {}, (c.change->>'lsn')::pg_lsn AS {}, {} "
            "FROM json_array_elements({}::json) WITH ORDINALITY AS c(change, ord) "
            "CROSS JOIN LATERAL json_populate_record(NULL::{}, c.change->'key') AS k "
            "LEFT JOIN {} AS t ON {} ORDER BY c.ord) TO STDOUT (FORMAT csv)"
        ).format(
            sql.Literal(DELETE_OP),
            sql.Literal(UPDATE_OP),
            sql.Literal(INSERT_OP),
            op,
            lsn,
            sql.SQL(", ").join(items),
            sql.Literal(json.dumps(keys, ensure_ascii=False)),
            sql.Identifier(*key),
            source(table),
            joined,
        )
