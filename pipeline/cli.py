"""The ``pipeline`` command: the project's steps that Meltano runs around the Singer pairs, and its maintenance.

Every setting comes from the environment (``DATA_DIR``, ``PIPELINE_DATE``,
``TARGET_POSTGRES_*``), as for the plugins. A failure prints one line naming the
step and the day, and exits 1.

Each step is a process of its own on the day's critical path, so a step imports
only the modules it runs (inside its function): ``claim`` needs neither the
analytics publish nor the export, ``publish-lfs`` no database code beyond the lock.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import sys
from pathlib import Path

import psycopg

from pipeline.core.dates import PRUNE_AFTER_RUN_ENV, parse_pipeline_date, refuse_expired_day
from pipeline.core.errors import PipelineError, as_pipeline_error, first_line, report_failure
from pipeline.jobs import DAY_JOBS, STEP1_JOBS, STEP2_JOB
from pipeline.runs.locks import check_run_holds, fenced, hold_run_lock


def _data_dir() -> Path:
    from pipeline.days.layout import resolve_data_dir

    return resolve_data_dir(os.environ.get("DATA_DIR") or "data")


def _claim(args: argparse.Namespace) -> None:
    """Take the job's run lock for the day, then fail Meltano's records of its dead runs (runs.meltano_records)."""
    from pipeline.core.commands import rerun_command
    from pipeline.runs.meltano_records import DATABASE_URI_ENV, ENVIRONMENT_ENV, fail_running_records, state_id

    day = parse_pipeline_date(os.environ.get("PIPELINE_DATE"))
    refuse_expired_day(day, os.environ, dt.datetime.now(dt.UTC).date())
    hold_run_lock(args.job, day)
    database_uri, environment = os.environ.get(DATABASE_URI_ENV), os.environ.get(ENVIRONMENT_ENV)
    if database_uri and environment:
        state_ids = [state_id(environment, pair, day) for pair in DAY_JOBS.pairs(args.job)]
        if failed := fail_running_records(database_uri, state_ids, rerun_command(args.job, day)):
            print(f"{args.job} {day}: an earlier run was killed; marked its {failed} Meltano run record(s) failed")


def _publish_lfs(args: argparse.Namespace) -> None:
    from pipeline.core.crashpoints import pause_point
    from pipeline.days.publish import publish_staged_day

    day = parse_pipeline_date(os.environ.get("PIPELINE_DATE"))
    hold_run_lock(args.job, day)
    pause_point("before-publish")
    with fenced(args.job, day) as check:
        receipt = publish_staged_day(_data_dir(), args.job, day, check)
    rows = sum(entry["rows"] for entry in receipt["tables"].values())
    print(f"{args.job} {day}: published {len(receipt['tables'])} tables, {rows} rows")


def _publish_analytics(args: argparse.Namespace) -> None:
    """Publish the day's load; with ``--export``, then export the day's result in the same process.

    Step 2's last two steps share one process (one interpreter start and one import of
    psycopg less on the day's critical path), but stay two transactions: the export
    reads the published day in a snapshot of its own, as ``pipeline export`` does.
    """
    from pipeline.core.connections import ANALYTICS, connect
    from pipeline.core.crashpoints import pause_point
    from pipeline.days.receipts import read_day
    from pipeline.warehouse.day_change import DEFAULT_LOCK_TIMEOUT
    from pipeline.warehouse.publish import publish_day

    day = parse_pipeline_date(os.environ.get("PIPELINE_DATE"))
    hold_run_lock(STEP2_JOB, day)
    pause_point("before-publish")
    receipts = read_day(_data_dir(), day, list(STEP1_JOBS))
    lock_timeout = os.environ.get("PIPELINE_LOCK_TIMEOUT") or DEFAULT_LOCK_TIMEOUT
    still_holds = functools.partial(check_run_holds, job=STEP2_JOB, day=day)
    with connect(ANALYTICS) as conn:
        published = publish_day(conn, day, receipts, lock_timeout, still_holds)
    print(f"analytics {day}: published {len(published.rows)} tables, {sum(published.rows.values())} rows")
    if published.note:
        print(f"analytics {day}: {published.note}")
    if args.export:
        _export(args)
    if os.environ.get(PRUNE_AFTER_RUN_ENV) == "1":
        _prune_after(day)


def _prune_after(day: dt.date) -> None:
    """Retention at the end of step 2 (``make run`` and Airflow alike), in its process.

    The day is published and exported by then: a prune that fails (a lock timeout, a
    bad ``RETENTION_DAYS``) says so in one line and leaves the day's run a success.
    """
    try:
        _prune(argparse.Namespace(force=False))
    except (PipelineError, psycopg.Error) as exc:
        print(f"prune after {day} failed: {first_line(exc)}; the day is published; rerun: make prune", file=sys.stderr)


def _export(_: argparse.Namespace) -> None:
    from pipeline.core.connections import ANALYTICS, connect
    from pipeline.warehouse.export import export_day

    day = parse_pipeline_date(os.environ.get("PIPELINE_DATE"))
    hold_run_lock(STEP2_JOB, day)
    with connect(ANALYTICS) as conn, fenced(STEP2_JOB, day) as check:
        print(export_day(conn, day, _data_dir(), check))


def _prune(args: argparse.Namespace) -> None:
    from pipeline.core.connections import ANALYTICS, connect
    from pipeline.core.dates import RETENTION_ENV, retention_days
    from pipeline.retention import prune
    from pipeline.warehouse.day_change import DEFAULT_LOCK_TIMEOUT

    keep_days = retention_days(os.environ.get(RETENTION_ENV))
    if keep_days is None:
        print(f"prune: {RETENTION_ENV} is not set: keeping every day")
        return
    lock_timeout = os.environ.get("PIPELINE_LOCK_TIMEOUT") or DEFAULT_LOCK_TIMEOUT
    with connect(ANALYTICS, autocommit=True) as conn:
        today = dt.datetime.now(dt.UTC).date()
        for line in prune(conn, _data_dir(), keep_days, lock_timeout, today, force=args.force):
            print(line)


def _migrate(args: argparse.Namespace) -> None:
    """Migrate an analytics table to the column types of the day's load, holding the day's step-2 run lock."""
    from pipeline.core.commands import rerun_command
    from pipeline.core.connections import ANALYTICS, connect
    from pipeline.warehouse.day_change import DEFAULT_LOCK_TIMEOUT
    from pipeline.warehouse.migrate import migrate_table

    day = parse_pipeline_date(args.date, "--date")
    hold_run_lock(STEP2_JOB, day)
    lock_timeout = os.environ.get("PIPELINE_LOCK_TIMEOUT") or DEFAULT_LOCK_TIMEOUT
    with connect(ANALYTICS) as conn:
        for line in migrate_table(conn, day, args.schema, args.table, lock_timeout):
            print(line)
    print(f"now run the day: {rerun_command(STEP2_JOB, day)}")


def _restore(args: argparse.Namespace) -> None:
    from pipeline.core.commands import rerun_command
    from pipeline.days.publish import restore_version

    day = parse_pipeline_date(args.date, "--date")
    hold_run_lock(args.job, day)
    with fenced(args.job, day) as check:
        version, replaced = restore_version(_data_dir(), args.job, day, args.version, check)
    kept = f"; the version it replaced is kept as {replaced.name}" if replaced else ""
    print(f"{args.job} {day}: restored version {version}{kept}")
    print(f"step 2 must be rerun for {day}: {rerun_command(STEP2_JOB, day)}")


def _slot_status(_: argparse.Namespace) -> None:
    """Report the LOG_BASED slot (pipeline.setup.replication); a stale one fails, so a scheduler can alert on it."""
    from pipeline.setup.replication import slot_report

    line, stale = slot_report(os.environ, _data_dir(), dt.datetime.now(dt.UTC))
    if stale:
        raise PipelineError(line)
    print(line)


def main(argv: list[str] | None = None) -> int:
    """Run one step; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    claim = commands.add_parser("claim", help="take a job's run lock for the day; fail records of its dead runs")
    claim.add_argument("--job", required=True, choices=DAY_JOBS.order)
    claim.set_defaults(run=_claim)
    publish_lfs = commands.add_parser("publish-lfs", help="move a step-1 job's staged day into place")
    publish_lfs.add_argument("--job", required=True)
    publish_lfs.set_defaults(run=_publish_lfs)
    publish_analytics = commands.add_parser(
        "publish-analytics", help="reconcile the day's load with the step-1 receipts, then swap its partitions in"
    )
    publish_analytics.add_argument(
        "--export", action="store_true", help="then export the day's result (as `export`), in the same process"
    )
    publish_analytics.set_defaults(run=_publish_analytics)
    commands.add_parser("export", help="export the day's result to CSV and JSON").set_defaults(run=_export)
    prune_days = commands.add_parser(
        "prune", help="remove the days older than RETENTION_DAYS days before today (UTC), files and analytics"
    )
    prune_days.add_argument(
        "--force", action="store_true", help="also the days whose step-1 files step 2 has not loaded"
    )
    prune_days.set_defaults(run=_prune)
    migrate = commands.add_parser(
        "migrate", help="give an analytics table the column types of a day's load, converting every day's values"
    )
    migrate.add_argument("--date", required=True, help="the day whose load has the new types, YYYY-MM-DD")
    migrate.add_argument("--schema", required=True, help="the table's analytics schema, e.g. postgres")
    migrate.add_argument("--table", required=True, help="the table's exact name")
    migrate.set_defaults(run=_migrate)
    restore_day = commands.add_parser("restore", help="publish a kept version of a step-1 job's day again")
    restore_day.add_argument("--job", required=True)
    restore_day.add_argument("--date", required=True, help="the day, YYYY-MM-DD")
    restore_day.add_argument("--version", help="a version under DATA_DIR/_history/JOB/DATE/ (default: the newest)")
    restore_day.set_defaults(run=_restore)
    commands.add_parser(
        "slot-status", help="the LOG_BASED replication slot: WAL held, last read; fails when stale"
    ).set_defaults(run=_slot_status)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except Exception as exc:
        # An object store's refusal or silence (pipeline.core.store.failure) is classed like a database's.
        failure = as_pipeline_error(exc)
        if failure is None and not isinstance(exc, psycopg.Error):
            raise
        report_failure(f"pipeline {args.command} failed", failure or PipelineError(first_line(exc)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
