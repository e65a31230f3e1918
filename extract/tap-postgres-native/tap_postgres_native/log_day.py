"""The LOG_BASED part of a run: its snapshot exported by the slot, its windows' ends, its tables' changed keys.

Called by the tap's ``sync_all`` in place of a plain ``SourceSnapshot.begin`` when
some table of the run is read ``LOG_BASED`` from the source (not republished from a
kept file). See ``log_slot`` for why the slot exports the snapshot and how it moves.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.days.bookmarks import Window
from pipeline.source.log_based import LOG_BASED, SLOT_VARIABLE, slot_name
from tap_postgres_native.log_slot import LogSlot
from tap_postgres_native.log_window import TableChanges, TableName
from tap_postgres_native.pgoutput import format_lsn, parse_lsn
from tap_postgres_native.snapshot import SourceSnapshot
from tap_postgres_native.source_catalog import SourceTable


def reads_log(window: Window) -> bool:
    """Whether the run reads this window from the source's log (LOG_BASED, not a past day's kept file)."""
    return window.method == LOG_BASED and window.kept_file is None


def begin_log_day(
    snapshot: SourceSnapshot,
    tables: list[SourceTable],
    windows: dict[TableName, Window],
    primary_keys: Mapping[TableName, Sequence[str]],
    config: Mapping[str, Any],
) -> dict[TableName, TableChanges]:
    """Begin ``snapshot`` at the day's end; set each LOG_BASED window's end (in ``windows``); return the changes.

    A table whose window has no start (its first day), or that was truncated in the
    window, gets no changes: its day is the whole table, and its window no start.
    When the slot did not exist (the first LOG_BASED run, or a slot dropped since), it
    is created now and every LOG_BASED table starts anew, whole, saying so on stderr:
    changes from before the slot cannot be read.
    """
    slot = LogSlot(config, slot_name({SLOT_VARIABLE: config.get("replication_slot") or ""}))
    created: list[bool] = []

    def export() -> str:
        point, snapshot_id, persistent = slot.export_snapshot()
        created.append(persistent)
        for key, window in windows.items():
            if reads_log(window):
                start = None if persistent else window.start
                windows[key] = dataclasses.replace(window, start=start, end=format_lsn(point))
        return snapshot_id

    try:
        snapshot.begin(tables, export=export)
    finally:
        slot.release()
    if created[0]:
        restarted = sorted(f"{schema}.{name}" for (schema, name), w in windows.items() if reads_log(w))
        print(
            f"tap-postgres-native: replication slot {slot.slot} created: {', '.join(restarted)} read whole today",
            file=sys.stderr,
        )
        return {}
    reading = {key: w for key, w in windows.items() if reads_log(w) and w.start is not None}
    if not reading:
        return {}
    starts = {w.start for w in reading.values()}
    ends = {w.end for w in reading.values()}
    if len(starts) != 1 or len(ends) != 1:
        raise AssertionError(f"LOG_BASED windows of one run differ: starts {starts}, ends {ends}")
    start, end = parse_lsn(starts.pop() or ""), parse_lsn(ends.pop() or "")
    changes = slot.changes(start, end, {key: primary_keys[key] for key in reading}, slot.slot)
    for key, table in list(changes.items()):
        if table.truncated:  # read whole: the window starts anew, as on a first day (its receipt says so)
            windows[key] = dataclasses.replace(windows[key], start=None)
            del changes[key]
    return changes
