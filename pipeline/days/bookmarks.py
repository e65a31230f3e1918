"""Each incremental table's window of a day, kept in the day's receipt: where a day starts and ends.

Why in the receipt, not in Meltano's state: Meltano's state id carries no day, so a
rerun or a backfill would start from whatever ran last. A receipt is the day's own
record of what step 1 published, so the window it names belongs to that day whatever
runs later, and the next day starts exactly where it ended: consecutive days never
lose or repeat a change.

A table read ``INCREMENTAL`` (or ``LOG_BASED``) has, in its receipt entry, a
``replication`` object::

    {"method": "INCREMENTAL", "key": "updated_at", "start": "2024-01-01 23:59:58+00", "end": "2024-01-02 23:59:59+00"}

``start`` (exclusive) is the previous day's ``end``: the ``end`` of the same table,
method and key in the latest earlier receipt of the job. Without one (the table's
first day, or its method or key changed), ``start`` is null and the day is a full
load: its folder holds the table's whole state, not its changes (``holds``).
``end`` (inclusive) is read in the day's snapshot (a key's maximum, or an LSN). The
values are the source's text of the key (or an LSN), compared by the source as its
own type. A ``FULL_TABLE`` table has no ``replication`` object: receipts of jobs
that read no table incrementally stay as they were.

The day's place among the receipts decides the window (``plan_window``):

- the latest day (a first run, or a rerun of it): from the previous day's end to now;
- a day run for the first time while a later day already has a receipt: refused in
  one line (its window would overlap the later day's);
- a rerun of a past day (a later day has a receipt): the day's kept file is
  published again, as it is (``Window.kept_file``); with ``PIPELINE_REEXTRACT=1`` an
  ``INCREMENTAL`` table is read again over the day's own recorded window instead
  (rows updated since have left it: the explicit choice of the user). A
  replication slot cannot rewind, so ``LOG_BASED`` always republishes.

tap-postgres-native plans each table's window here, reads its end in the snapshot,
and sends the windows in one ``BOOKMARKS`` message; target-lfs stages them in
``BOOKMARKS_FILE``; the publish writes each into its table's receipt entry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.days.layout import RUNS_DIR, receipt_path

BOOKMARKS_MESSAGE = "BOOKMARKS"
BOOKMARKS_FILE = "_bookmarks.json"
REEXTRACT_VARIABLE = "PIPELINE_REEXTRACT"
INCREMENTAL = "INCREMENTAL"
# What a day's partition of a table holds: the table's whole state, or the changes since the previous day.
STATE = "state"
CHANGES = "changes"


@dataclasses.dataclass(frozen=True)
class Window:
    """One table's window of one day: ``start`` exclusive (None: a full load), ``end`` inclusive.

    ``kept_file`` (a path under the data dir) is set when the day's published file is
    to be published again instead of reading the source (a rerun of a past day).
    """

    method: str
    key: str | None
    start: str | None
    end: str | None = None
    kept_file: str | None = None
    kept_rows: int | None = None  # the kept file's rows, as its receipt recorded them

    @property
    def holds(self) -> str:
        """``state`` for a full load, ``changes`` for a window that starts at a bookmark."""
        return STATE if self.start is None else CHANGES

    def receipt_entry(self) -> dict[str, Any]:
        """The ``replication`` object of the table's receipt entry."""
        return {"method": self.method, "key": self.key, "start": self.start, "end": self.end}


def holds(replication: dict[str, Any] | None) -> str:
    """What a day's file holds, from its receipt entry's ``replication`` (None: a ``FULL_TABLE`` table)."""
    if replication is None or replication.get("start") is None:
        return STATE
    return CHANGES


class ReceiptHistory:
    """The receipts of ``job`` around ``day``: the day's own, the latest earlier one, the earliest later one."""

    def __init__(self, data_dir: Path, job: str, day: dt.date) -> None:
        self.data_dir, self.job, self.day = data_dir, job, day
        folder = data_dir / RUNS_DIR / job
        days = sorted(_receipt_day(path) for path in folder.glob("*.json")) if folder.is_dir() else []
        days = [d for d in days if d is not None]
        self.previous_day = max((d for d in days if d < day), default=None)
        self.later_day = min((d for d in days if d > day), default=None)

    @cached_property
    def own(self) -> dict[str, Any] | None:
        """The day's receipt, if the day was published before (a rerun)."""
        return _read_receipt(receipt_path(self.data_dir, self.job, self.day))

    @cached_property
    def previous(self) -> dict[str, Any] | None:
        """The latest earlier day's receipt, where the day's windows start."""
        if self.previous_day is None:
            return None
        return _read_receipt(receipt_path(self.data_dir, self.job, self.previous_day))


def _receipt_day(path: Path) -> dt.date | None:
    try:
        return dt.date.fromisoformat(path.stem)
    except ValueError:
        return None


def _read_receipt(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path} is not valid JSON: {exc}") from exc


def _replication(receipt: dict[str, Any] | None, key: str, method: str, column: str | None) -> dict[str, Any] | None:
    """The table's recorded window in ``receipt`` if it was read with the same method and key, else None."""
    entry = (receipt or {}).get("tables", {}).get(key) or {}
    replication = entry.get("replication")
    if replication and replication.get("method") == method and replication.get("key") == column:
        return replication
    return None


def plan_window(
    receipts: ReceiptHistory, key: str, name: str, method: str, column: str | None, reextract: bool
) -> Window:
    """The window of table ``key`` (its folder name; ``name`` for messages) for the day (module docstring).

    The end of a window that is read from the source is left None: the snapshot reads it.
    """
    day, job = receipts.day, receipts.job
    if receipts.later_day is None:
        previous = _replication(receipts.previous, key, method, column)
        return Window(method, column, previous["end"] if previous else None)
    own = _replication(receipts.own, key, method, column)
    if own is None:
        raise PipelineError(
            f"refused: table {name} is read {method} and {job} already has a receipt for the later day "
            f"{receipts.later_day}; a first run of {day} now would overlap that day's window: run days in order "
            f"(a past day can only be rerun once it was run)"
        )
    if reextract and method == INCREMENTAL:
        return Window(method, column, own["start"], own["end"])
    entry = receipts.own["tables"][key]  # type: ignore[index]
    return Window(
        method,
        column,
        own["start"],
        own["end"],
        kept_file=f"{entry['folder']}/{entry['file']}",
        kept_rows=entry["rows"],
    )


def add_windows(tables: dict[str, dict[str, Any]], bookmarks: dict[str, dict[str, Any]]) -> None:
    """Write each incremental table's window into its receipt entry (``tables``: the receipt's, by table key)."""
    for key, replication in bookmarks.items():
        if key in tables:
            tables[key]["replication"] = replication


def staged_bookmarks(staging: Path) -> dict[str, dict[str, Any]]:
    """The windows target-lfs staged for the run (table key -> receipt entry); none if the tap sent none."""
    path = staging / BOOKMARKS_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def refuse_moved_windows(data_dir: Path, job: str, day: dt.date, restored: dict[str, Any]) -> None:
    """Refuse a restore of ``day`` that would change an incremental table's window while a later day has a receipt.

    The later day's window starts at this day's recorded end: a version with other
    windows would leave a gap or an overlap between the two days.
    """
    receipts = ReceiptHistory(data_dir, job, day)
    if receipts.later_day is None:
        return
    now = (receipts.own or {}).get("tables", {})
    then = restored.get("tables", {})
    moved = sorted(
        key
        for key in set(now) | set(then)
        if (now.get(key) or {}).get("replication") != (then.get(key) or {}).get("replication")
    )
    if moved:
        raise PipelineError(
            f"refused: the kept version of {job} {day} has other windows for {', '.join(moved)} than the published "
            f"one, and {receipts.later_day} starts where the published one ends; restoring it would leave a gap or an "
            "overlap between the days"
        )
