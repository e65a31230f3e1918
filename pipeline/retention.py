"""Retention: ``RETENTION_DAYS`` removes what belongs to days older than that many days before today (UTC).

What a day owns, in files (under ``DATA_DIR``): its day folders of both sources
(``postgres/{folder}/{day}/``, ``csv/{day}/``: the loaders' ``folder_template``), each
job's receipt (``_runs/{job}/{day}.json``), kept versions (``_history/{job}/{day}/``),
staging left by a killed run (``.staging/{job}/{day}/``) and its result
(``results/{day}/``); in the analytics database: the day's partitions (detached, then
dropped with their load schemas, in one transaction with ``lock_timeout`` as a publish),
its bookkeeping rows (``pipeline.warehouse.bookkeeping``) and any load schema ``pipeline_{yyyymmdd}_...`` a
failed load left. Unset, nothing is removed. A table whose later kept day holds only
changes (an incremental table) keeps the pruned day's state as a base partition
(``pipeline.warehouse.as_of.fold_into_base``), so that its state as of every kept day still holds.

A day is pruned while holding the run and writer locks of every job for it
(``pipeline.runs.locks.day_if_idle``; the jobs are those with anything under ``_runs``,
``_history`` or ``.staging``, and step 2), so a run of that day can neither be running
nor start meanwhile; a day one of them is running for is skipped and said so, always.

A day whose step-1 receipts have not reached the analytics database is kept too (one
line says so): every table a receipt lists must be published for the day in
the bookkeeping with the receipt's sha256. Else a backfill of old days with
``PRUNE_AFTER_RUN=1`` would have each step 2 prune the next day's freshly published
step-1 files before its own step 2 loads them. ``force`` prunes such days all the same.

On disk the receipts go first, so a prune cut short leaves a day that step 2 refuses,
and the next prune finishes it: pruning is idempotent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from pipeline.core.commands import rerun_command
from pipeline.core.dates import oldest_kept_day
from pipeline.core.errors import PipelineError
from pipeline.core.files import read_json
from pipeline.core.store import is_object_store, remove_tree
from pipeline.days.history import HISTORY_DIR, history_root
from pipeline.days.layout import RUNS_DIR, STAGING_DIR, receipt_path, staging_root
from pipeline.days.object_store import sweep
from pipeline.jobs import DAY_FOLDER_PARENTS, STEP2_JOB
from pipeline.runs.locks import day_if_idle
from pipeline.warehouse.as_of import attach_bases, fold_into_base, forget_day
from pipeline.warehouse.bookkeeping import forget_loads, loaded_days, published_files
from pipeline.warehouse.day_change import guard_day_change, locks_in_time
from pipeline.warehouse.loads import LOAD_SCHEMA_PREFIX
from pipeline.warehouse.partitions import detach_day
from pipeline.warehouse.results import RESULTS_DIR

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_LOAD_SCHEMA_DAY = re.compile(re.escape(LOAD_SCHEMA_PREFIX) + r"(\d{8})_")


def _as_day(name: str) -> dt.date | None:
    if not _ISO_DAY.fullmatch(name):
        return None
    try:
        return dt.date.fromisoformat(name)
    except ValueError:
        return None


def _days_in(folder: Path, suffix: str = "") -> set[dt.date]:
    """The days that name entries of ``folder`` (``{day}{suffix}``)."""
    if not folder.is_dir():
        return set()
    return {day for entry in folder.iterdir() if (day := _as_day(entry.name.removesuffix(suffix)))}


@dataclasses.dataclass
class FileDays:
    """The days found on disk, and the jobs that have written anything under their own folders."""

    days: set[dt.date] = dataclasses.field(default_factory=set)
    jobs: set[str] = dataclasses.field(default_factory=set)


def file_days(data_dir: Path) -> FileDays:
    """Every day that owns something on disk, and every job name found there."""
    found = FileDays()
    for parent in DAY_FOLDER_PARENTS:
        for folder in data_dir.glob(parent):
            found.days |= _days_in(folder)
    found.days |= _days_in(data_dir / RESULTS_DIR)
    for top, suffix in ((RUNS_DIR, ".json"), (HISTORY_DIR, ""), (STAGING_DIR, "")):
        for job in (p for p in (data_dir / top).glob("[!.]*") if p.is_dir()):  # jobs only: no hidden folder
            found.jobs.add(job.name)
            found.days |= _days_in(job, suffix)
    return found


def remove_day_files(data_dir: Path, day: dt.date, jobs: set[str], check: Callable[[], None]) -> int:
    """Remove everything ``day`` owns on disk, receipts first; returns how many entries went.

    ``check`` (that the day's locks are still held) runs before each removal.
    """
    iso = day.isoformat()
    removed = 0
    for job in sorted(jobs):
        receipt = receipt_path(data_dir, job, day)
        if receipt.is_file():
            check()
            receipt.unlink()
            removed += 1
    folders = [folder / iso for parent in DAY_FOLDER_PARENTS for folder in data_dir.glob(parent)]
    folders += [history_root(data_dir, job, day) for job in sorted(jobs)]
    folders += [staging_root(data_dir, job, day) for job in sorted(jobs)]
    results = data_dir / RESULTS_DIR
    folders += [results / iso, *(results.glob(f".{iso}.*") if results.is_dir() else [])]
    for folder in folders:
        if folder.is_dir():
            check()
            remove_tree(folder)
            removed += 1
    return removed


def analytics_days(conn: psycopg.Connection) -> set[dt.date]:
    """Every day that owns something in the analytics database (bookkeeping rows or load schemas)."""
    days = loaded_days(conn)
    for (name,) in conn.execute(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (LOAD_SCHEMA_PREFIX,)
    ).fetchall():
        if match := _LOAD_SCHEMA_DAY.match(name):
            days.add(dt.datetime.strptime(match.group(1), "%Y%m%d").date())
    return days


def drop_analytics_day(conn: psycopg.Connection, day: dt.date, lock_timeout: str) -> int:
    """Detach and drop ``day``'s partitions, its bookkeeping rows and load schemas; returns the partitions dropped."""
    with locks_in_time(day, lock_timeout, "prune"), conn.transaction():
        guard_day_change(conn, lock_timeout)
        bases = fold_into_base(conn, day)
        partitions = detach_day(conn, day)
        prefix = f"{LOAD_SCHEMA_PREFIX}{day:%Y%m%d}_"
        schemas = {
            name
            for (name,) in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,)
            ).fetchall()
        }
        for schema in sorted(schemas | {p.schema for p in partitions}):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        forget_loads(conn, day)
        forget_day(conn, day)
        attach_bases(conn, day, bases)
    return len(partitions)


def unloaded_receipts(data_dir: Path, day: dt.date, jobs: set[str], published: set[tuple[str, str]]) -> list[str]:
    """The jobs whose receipt for ``day`` lists a file step 2 has not published (an unreadable receipt counts)."""
    unloaded = []
    for job in sorted(jobs):
        receipt = receipt_path(data_dir, job, day)
        if not receipt.is_file():
            continue
        try:
            files = {(key, entry["sha256"]) for key, entry in read_json(receipt)["tables"].items()}
        except (PipelineError, KeyError, TypeError, AttributeError):
            files = None  # nothing tells what it covers: keep it
        if files is None or not files <= published:
            unloaded.append(job)
    return unloaded


def prune(
    conn: psycopg.Connection, data_dir: Path, keep_days: int, lock_timeout: str, today: dt.date, force: bool = False
) -> list[str]:
    """Remove every day before ``today - keep_days`` that no run holds and that reached the analytics database.

    ``force``: also the days whose step-1 receipts step 2 has not published. Returns one line per day.
    """
    cutoff = oldest_kept_day(today, keep_days)
    on_disk = file_days(data_dir)
    jobs = on_disk.jobs | {STEP2_JOB}
    days = sorted(day for day in on_disk.days | analytics_days(conn) if day < cutoff)
    lines = []
    for day in days:
        with day_if_idle(sorted(jobs), day, "pipeline-prune") as hold:
            if hold.busy:
                lines.append(f"prune {day}: skipped, {hold.busy}; the next prune removes it")
                continue
            unloaded = unloaded_receipts(data_dir, day, jobs, published_files(conn, day))
            if unloaded and not force:
                lines.append(
                    f"prune {day}: kept, not in the analytics database: the files of {', '.join(unloaded)} are not "
                    f"loaded; load them ({rerun_command(STEP2_JOB, day)}) or prune with --force (make prune FORCE=1)"
                )
                continue
            # The analytics day first: one transaction that may time out on a lock, and then
            # changes nothing; the files' removal cannot fail that way.
            hold.check()
            partitions = drop_analytics_day(conn, day, lock_timeout)
            files = remove_day_files(data_dir, day, jobs, hold.check)
        lines.append(f"prune {day}: removed {files} receipts and folders, {partitions} analytics partitions")
    if is_object_store(data_dir):
        lines += sweep_leftovers(data_dir, {day for day in on_disk.days if day >= cutoff}, on_disk.jobs)
    if not lines:
        lines.append(f"prune: nothing older than {cutoff} ({keep_days} days before {today})")
    return lines


def sweep_leftovers(data_dir: Path, days: set[dt.date], jobs: set[str]) -> list[str]:
    """In an object store: remove the run folders of the kept ``days`` that runs which never published left.

    A day one of whose jobs is running is skipped (its run folders may be in use).
    See ``pipeline.days.object_store.sweep``.
    """
    lines = []
    for day in sorted(days):
        stale = [job for job in sorted(jobs) if staging_root(data_dir, job, day).exists()]
        if not stale:
            continue
        with day_if_idle(stale, day, "pipeline-prune") as hold:
            if hold.busy:
                continue
            removed = sum(sweep(data_dir, job, day, DAY_FOLDER_PARENTS, hold.check) for job in stale)
        lines.append(f"prune {day}: removed {removed} run folders that unpublished runs of {', '.join(stale)} left")
    return lines
