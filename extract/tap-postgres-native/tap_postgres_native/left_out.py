"""The tables of the selected schemas that a run does not extract, so that none is left out without a word.

Why: a table can be absent from a day for reasons no error reports: the user left it
out (the ``tables`` setting), it is a partition whose partitioned table lies in a
schema that is not extracted (partitions are read through their parent only), or it
is a foreign table. Each is named on a line of the job's log (``tap.py``) and sent to
target-lfs as one ``LEFT_OUT`` message, which the publish records in the day's receipt
(``pipeline.days.layout``), where users and step 2 read what a day holds.
"""

from __future__ import annotations

import dataclasses
import json

from pipeline.days.layout import LEFT_OUT_MESSAGE
from tap_postgres_native.source_catalog import SkippedTable, SourceTable
from tap_postgres_native.table_settings import SETTING, TableSettings


@dataclasses.dataclass(frozen=True)
class LeftOutTable:
    """A table not extracted, named exactly, with why."""

    schema: str
    name: str
    quoted: str  # as SQL quotes it, for the log line
    reason: str


def left_out_tables(
    tables: dict[tuple[str, str], SourceTable], settings: TableSettings, skipped: list[SkippedTable]
) -> list[LeftOutTable]:
    """The discovered ``tables`` that ``settings`` leave out, and the ``skipped`` ones, in name order."""
    deselected = [
        LeftOutTable(table.schema, table.name, table.quoted, f'"selected": false in setting {SETTING}')
        for (schema, name), table in tables.items()
        if not settings.selected(schema, name)
    ]
    other = [LeftOutTable(table.schema, table.name, table.quoted, table.reason) for table in skipped]
    return sorted(deselected + other, key=lambda table: (table.schema, table.name))


def left_out_message(tables: list[LeftOutTable]) -> str:
    """The ``LEFT_OUT`` message line: each table's source schema, exact name and reason."""
    return json.dumps(
        {
            "type": LEFT_OUT_MESSAGE,
            "tables": [{"source_schema": t.schema, "table": t.name, "reason": t.reason} for t in tables],
        },
        ensure_ascii=False,
    )
