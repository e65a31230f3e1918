"""How each table of a run is read: whole (``FULL_TABLE``) or within its day's window (``INCREMENTAL``).

The window (``pipeline.days.bookmarks``) is planned from the job's receipts before the
snapshot, so that a day run out of order is refused before any table is locked; its
end is read inside the run's one snapshot (``SourceSnapshot.value``), the maximum of
the key, so that the COPY (``window_condition``, in the same snapshot) and the end
agree: a row committed after the snapshot has a key the next day's window holds, or
none it can miss. ``end`` never goes back: with every row at or below the start
deleted, it stays at the start.

A key that goes back in time (a row updated to a key at or below the previous day's
end, or a clock set back) is not seen by a later window: INCREMENTAL sees inserts and
updates that raise the key, never deletes (README: Replication modes). Rows whose key
is NULL are in the first day's full load only. Nor a row whose key a transaction took
before the snapshot and committed after it, below the end (a serial drawn, ``now()``):
no key is in commit order.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from psycopg2 import sql

from pipeline.core.dates import parse_pipeline_date
from pipeline.core.errors import PipelineError
from pipeline.core.names import table_folder
from pipeline.days.bookmarks import BOOKMARKS_MESSAGE, REEXTRACT_VARIABLE, ReceiptHistory, Window, plan_window
from pipeline.days.layout import resolve_data_dir
from pipeline.source.log_based import LSN_COLUMN, OP_COLUMN
from tap_postgres_native.source_catalog import SourceTable
from tap_postgres_native.table_settings import FULL_TABLE, INCREMENTAL, LOG_BASED, VARIABLE, TableSettings

# The tap's settings that place the run among the job's receipts (only needed when a table is not FULL_TABLE).
RECEIPT_SETTINGS = ("data_dir", "pipeline_date", "job")


def replication_problems(
    tables: Mapping[tuple[str, str], SourceTable], keys: Mapping[tuple[str, str], list[str]], settings: TableSettings
) -> list[str]:
    """One line per table whose method cannot be followed: no primary key, a key that is no column, a reserved name.

    A LOG_BASED table's day file starts with the columns ``_pipeline_op`` and
    ``_pipeline_lsn`` (``log_stream``): a source column of either name is refused.
    """
    problems = []
    for (schema, name), table in sorted(tables.items()):
        method = settings.method(schema, name)
        if method == FULL_TABLE:
            continue
        if method == INCREMENTAL:
            column = settings.replication_key(schema, name)
            if column not in table.columns:
                problems.append(f"table {table.quoted}: replication-key {column!r} is no column of it ({VARIABLE})")
        for reserved in (OP_COLUMN, LSN_COLUMN):
            if method == LOG_BASED and reserved in table.columns:
                problems.append(
                    f"table {table.quoted}, column {reserved!r}: the name is reserved for the column LOG_BASED adds; "
                    f"rename the column at the source, or read the table INCREMENTAL or FULL_TABLE ({VARIABLE})"
                )
        for column in settings.declared_key(schema, name):
            if column not in table.columns:
                problems.append(
                    f"table {table.quoted}: table-key-properties {column!r} is no column of it ({VARIABLE})"
                )
        if not keys.get((schema, name)):
            declare = ", declare one (table-key-properties)" if method == INCREMENTAL else ""
            problems.append(
                f"table {table.quoted}: replication-method {method} needs a primary key (a day's changes are merged "
                f"by it); add one at the source{declare}, or read the table FULL_TABLE ({VARIABLE})"
            )
    return problems


def plan_windows(
    config: Mapping[str, Any], tables: list[SourceTable], settings: TableSettings
) -> dict[tuple[str, str], Window]:
    """The window of every table of the run that is not read whole, its end still to be read in the snapshot."""
    incremental = [t for t in tables if settings.method(t.schema, t.name) != FULL_TABLE]
    if not incremental:
        return {}
    if missing := [name for name in RECEIPT_SETTINGS if not config.get(name)]:
        raise PipelineError(
            f"tap-postgres settings {', '.join(missing)} are not set: a table read incrementally needs the job's "
            "receipts (set them as extract/extractors.meltano.yml does)"
        )
    receipts = ReceiptHistory(
        resolve_data_dir(config["data_dir"]), config["job"], parse_pipeline_date(config["pipeline_date"])
    )
    reextract = os.environ.get(REEXTRACT_VARIABLE, "") == "1"
    return {
        (t.schema, t.name): plan_window(
            receipts,
            table_folder(t.schema, t.name),
            t.quoted,
            settings.method(t.schema, t.name),
            settings.replication_key(t.schema, t.name),
            reextract,
        )
        for t in incremental
    }


def source(table: SourceTable) -> sql.Composed:
    """The table as a COPY or a query reads it: ``ONLY`` for every table but a partitioned one."""
    return sql.SQL("{}{}").format(
        sql.SQL("" if table.partitioned else "ONLY "), sql.Identifier(table.schema, table.name)
    )


def end_query(table: SourceTable, window: Window) -> sql.Composed:
    """The window's end: the key's maximum now, never below the start (text, compared later as the key's type)."""
    key = sql.Identifier(window.key or "")
    if window.start is None:
        return sql.SQL("SELECT max({})::text FROM {}").format(key, source(table))
    return sql.SQL("SELECT GREATEST(max({}), {})::text FROM {}").format(key, sql.Literal(window.start), source(table))


def window_condition(window: Window | None) -> sql.Composable:
    """The COPY's ``WHERE`` for the window: ``start < key <= end``; a full load: ``key <= end`` or no key.

    A full load read now has nothing above its end; one read again (``PIPELINE_REEXTRACT``)
    keeps to its recorded end. The bookmarks are untyped literals, so the source
    compares them as the key's own type.
    """
    if window is None or window.end is None:
        return sql.SQL("")
    key, end = sql.Identifier(window.key or ""), sql.Literal(window.end)
    if window.start is None:
        return sql.SQL(" WHERE {} <= {} OR {} IS NULL").format(key, end, key)
    return sql.SQL(" WHERE {} > {} AND {} <= {}").format(key, sql.Literal(window.start), key, end)


def with_end(window: Window, end: str | None) -> Window:
    """The window with the end read in the snapshot."""
    return dataclasses.replace(window, end=end)


def bookmarks_message(windows: Mapping[tuple[str, str], Window]) -> str:
    """The ``BOOKMARKS`` message: each table's window by its folder key, as the receipt records it."""
    tables = {table_folder(schema, name): w.receipt_entry() for (schema, name), w in sorted(windows.items())}
    return json.dumps({"type": BOOKMARKS_MESSAGE, "tables": tables}, ensure_ascii=False)


def kept_file(config: Mapping[str, Any], window: Window, columns: list[str], name: str) -> Path:
    """The published day file a rerun of a past day republishes; refused if its columns are not the run's."""
    path = resolve_data_dir(config["data_dir"]) / (window.kept_file or "")
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader([handle.readline()]))
    except FileNotFoundError as exc:
        raise PipelineError(f"table {name}: the day's kept file {path} is missing; {_REEXTRACT_HINT}") from exc
    if header != columns:
        raise PipelineError(
            f"table {name}: the day's kept file {path} has columns {header}, the source now {columns}; "
            f"{_REEXTRACT_HINT}"
        )
    return path


_REEXTRACT_HINT = (
    f"read the day's window again with {REEXTRACT_VARIABLE}=1 (make run REEXTRACT=1), or restore a kept version"
)
