"""Publishing one loaded day: reconcile it with the step-1 receipts, then swap its partitions in.

Every analytics table of a source is partitioned by the day column, one partition per
day. target-analytics has already COPYed each of the day's files into a fresh table
(in a ``pipeline_...`` schema of its load, with the day column checked to be the day,
and the source's key plus the day as primary key), and recorded its row counts in
its bookkeeping (``pipeline.warehouse.bookkeeping``). Publishing the day:

1. refuses it unless every table the step-1 receipts list was loaded from the very file
   they list, with exactly the manifest's row count (the refusal names the table and
   both counts), and nothing else was loaded;
2. refuses it if a column's type changed at the source in a way the analytics table
   cannot follow (naming table, column, both types and the ``pipeline migrate``
   command), or a table's key changed; the analytics table follows a lossless widening
   (``pipeline.warehouse.widening``) by itself, and a day earlier than the table's latest loaded
   in a type the table was widened or migrated from (a rerun) is converted to it;
3. in one short transaction with ``lock_timeout`` set: creates missing parent tables,
   adds new source columns to the parent (and missing ones to the new partition),
   widens the parent's columns (which rewrites the earlier days only when the storage
   changes, e.g. ``smallint`` -> ``integer``; ``varchar(40)`` -> ``varchar(200)`` is a
   catalog change),
   detaches the day's old partitions (also of tables the source no longer has),
   attaches the new tables as the day's partitions, drops the old ones, and records
   the load as published.

Attaching moves no rows (the day's CHECK constraint spares the scan, the key's index
is adopted), so publishing costs no second write of the day; readers see the old day
or the new one, and other days are never touched. A lock not granted in time is a
``TransientPipelineError``: another session was using the table, a retry may pass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import psycopg

from pipeline.core.commands import rerun_command
from pipeline.core.crashpoints import pause_point
from pipeline.core.errors import PipelineError
from pipeline.days.folder import TableFile
from pipeline.jobs import STEP2_JOB
from pipeline.warehouse.as_of import ensure_as_of, record_day
from pipeline.warehouse.bookkeeping import ensure_project_schema, unpublished_load
from pipeline.warehouse.day_change import guard_day_change, locks_in_time
from pipeline.warehouse.partitions import check_table, swap_partitions
from pipeline.warehouse.reconcile import reconcile
from pipeline.warehouse.result_view import ensure_result_view


@dataclasses.dataclass(frozen=True)
class Published:
    """What a publish did: rows per analytics table, and why there is no result view, if there is none."""

    rows: dict[str, int]
    note: str | None


def publish_day(
    conn: psycopg.Connection,
    day: dt.date,
    receipts: list[TableFile],
    lock_timeout: str,
    check: Callable[[psycopg.Connection], None],
) -> Published:
    """Publish the day's load (see the module docstring).

    ``check`` runs first in the publish's transaction (``pipeline.runs.locks.check_run_holds``:
    the run still holds the day, and no newer run can claim it before the commit).
    """
    with locks_in_time(day, lock_timeout), conn.transaction():
        guard_day_change(conn, lock_timeout)
        check(conn)
        ensure_project_schema(conn)
        loaded = unpublished_load(conn, day)
        if not loaded and receipts:
            raise PipelineError(f"nothing loaded for {day} awaits publishing; rerun: {rerun_command(STEP2_JOB, day)}")
        reconcile(day, loaded, receipts)
        if problems := [line for table in loaded for line in check_table(conn, day, table)]:
            raise PipelineError(f"refused to publish {day}: {'; '.join(problems)}")
        swap_partitions(conn, day, loaded)
        ensure_as_of(conn)
        record_day(conn, day, receipts)
        note = ensure_result_view(conn)
        pause_point("analytics-publish")
    return Published({table.label: table.loaded_rows for table in loaded}, note)
