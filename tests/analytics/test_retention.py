"""Retention (``make prune``) by real Meltano on real Postgres, over days step 2 really loaded.

Days are placed relative to today (UTC), as the prune measures them: two old ones (one
of them with a run holding its lock), and a recent one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pipeline.core.connections import ANALYTICS
from pipeline.days.history import HISTORY_DIR, kept_versions
from pipeline.days.layout import staging_root
from pipeline.days.receipts import read_day
from pipeline.runs.advisory import lock_key
from pipeline.warehouse.partitions import day_partitions
from tests.analytics.days import JOBS, Analytics, write_day
from tests.analytics.test_step2 import details, orders

pytestmark = pytest.mark.integration

TODAY = dt.datetime.now(dt.UTC).date()
OLD, LOCKED, RECENT = (TODAY - dt.timedelta(days=n) for n in (10, 9, 2))
KEEP = "5"


def day_paths(data_dir: Path, day: dt.date) -> list[Path]:
    """Every place on disk that a day owns."""
    iso = day.isoformat()
    return [
        data_dir / "postgres" / "orders" / iso,
        data_dir / "csv" / iso,
        data_dir / "results" / iso,
        *(data_dir / "_runs" / job / f"{iso}.json" for job in JOBS),
    ]


def view_days(conn: psycopg.Connection) -> dict[dt.date, int]:
    rows = conn.execute("SELECT pipeline_date, count(*) FROM pipeline.orders_with_details GROUP BY 1").fetchall()
    return dict(rows)


def publish_and_load(analytics: Analytics, day: dt.date) -> None:
    write_day(analytics.data_dir, day.isoformat(), JOBS[0], [orders(1, 2)])
    write_day(analytics.data_dir, day.isoformat(), JOBS[1], [details(1, 2)])
    analytics.meltano_ok("lfs-to-analytics", day=day.isoformat())


def prune(analytics: Analytics) -> str:
    result = analytics.invoke("prune", RETENTION_DAYS=KEEP)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_prune_removes_old_days_in_files_and_analytics_and_keeps_recent_and_running_days(
    analytics: Analytics,
) -> None:
    data = analytics.data_dir
    # The old day also has a kept version (step 1 ran twice before its load), a killed run's
    # staging and a failed load's schema.
    write_day(data, OLD.isoformat(), JOBS[0], [orders(1)])
    for day in (OLD, LOCKED, RECENT):
        publish_and_load(analytics, day)
    assert kept_versions(data, JOBS[0], OLD)
    (staging_root(data, JOBS[1], OLD) / "csv").mkdir(parents=True)
    with analytics.connect_as_job(ANALYTICS) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(f"pipeline_{OLD:%Y%m%d}_deadbeef_0")))
    assert all(path.exists() for day in (OLD, LOCKED, RECENT) for path in day_paths(data, day))

    with analytics.connect() as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("run", JOBS[1], LOCKED),))
        output = prune(analytics)

    assert f"prune {OLD}: removed" in output
    assert f"prune {LOCKED}: skipped, {JOBS[1]} is running for it" in output
    assert str(RECENT) not in output
    assert not any(path.exists() for path in day_paths(data, OLD))
    assert not (data / HISTORY_DIR / JOBS[0] / OLD.isoformat()).exists()
    assert not staging_root(data, JOBS[1], OLD).exists()
    for day in (LOCKED, RECENT):
        assert {t.table for t in read_day(data, day, list(JOBS))} == {"orders", "order_details"}
        assert (data / "results" / day.isoformat() / "orders_with_details.json").is_file()
    with analytics.connect() as conn:
        assert day_partitions(conn, OLD) == []
        assert len(day_partitions(conn, LOCKED)) == len(day_partitions(conn, RECENT)) == 2
        assert view_days(conn) == {LOCKED: 4, RECENT: 4}
        left = conn.execute("SELECT count(*) FROM pipeline.loaded_tables WHERE pipeline_date = %s", (OLD,)).fetchone()[
            0
        ]
        schemas = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, %s)", (f"pipeline_{OLD:%Y%m%d}_",)
        ).fetchone()[0]
    assert (left, schemas) == (0, 0)

    # Once the run has finished, the next prune removes the day; then there is nothing left to do.
    assert f"prune {LOCKED}: removed" in prune(analytics)
    assert "prune: nothing older than" in prune(analytics)
    assert not any(path.exists() for path in day_paths(data, LOCKED))
    with analytics.connect() as conn:
        assert view_days(conn) == {RECENT: 4}
    analytics.meltano_ok("lfs-to-analytics", day=RECENT.isoformat())  # the recent day still reruns


def test_a_table_locked_too_long_fails_the_prune_as_transient_and_changes_nothing(analytics: Analytics) -> None:
    publish_and_load(analytics, OLD)

    with analytics.connect() as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM postgres.orders")  # holds its lock until the end of the transaction
        result = analytics.invoke("prune", RETENTION_DAYS=KEEP, PIPELINE_LOCK_TIMEOUT="200ms")
        reader.execute("ROLLBACK")

    assert result.returncode == 1
    assert f"pipeline prune failed: prune of {OLD}: a table was locked by another session" in result.stderr
    assert "lock_timeout 200ms" in result.stderr
    assert all(path.exists() for path in day_paths(analytics.data_dir, OLD))
    with analytics.connect() as conn:
        assert len(day_partitions(conn, OLD)) == 2
    assert f"prune {OLD}: removed" in prune(analytics)


@pytest.mark.parametrize("value", ["ten", "0"])
def test_an_invalid_retention_is_refused_in_one_line_naming_the_setting(analytics: Analytics, value: str) -> None:
    result = analytics.invoke("prune", RETENTION_DAYS=value)

    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if "RETENTION_DAYS" in line]
    assert line.endswith(  # after Meltano's log prefix
        f"pipeline prune failed: RETENTION_DAYS={value!r} is not a whole number of days of at least 1 (unset: keep all)"
    )


def test_without_retention_prune_keeps_everything_and_says_so(analytics: Analytics) -> None:
    write_day(analytics.data_dir, OLD.isoformat(), JOBS[1], [details(1)])

    result = analytics.invoke("prune", RETENTION_DAYS="")

    assert result.returncode == 0, result.stderr[-4000:]
    assert "RETENTION_DAYS is not set: keeping every day" in result.stdout
    assert read_day(analytics.data_dir, OLD, [JOBS[1]])


def receipts(data_dir: Path, day: dt.date) -> list[Path]:
    return [data_dir / "_runs" / job / f"{day.isoformat()}.json" for job in JOBS]


def test_a_backfill_of_old_days_with_prune_after_run_loads_every_day(analytics: Analytics) -> None:
    """Each step 2 prunes after its day; the next day's step-1 files, not loaded yet, are kept for its step 2."""
    data = analytics.data_dir
    for day in (OLD, LOCKED):  # step 1 of the backfill ran for both days
        write_day(data, day.isoformat(), JOBS[0], [orders(1, 2)])
        write_day(data, day.isoformat(), JOBS[1], [details(1, 2)])
    backfill = {"RETENTION_DAYS": KEEP, "PRUNE_AFTER_RUN": "1", "PIPELINE_FORCE_OLD_DAY": "1"}

    first = analytics.meltano("lfs-to-analytics", day=OLD.isoformat(), **backfill)

    assert first.returncode == 0, first.stderr[-4000:]
    output = first.stdout + first.stderr
    assert f"prune {OLD}: skipped, lfs-to-analytics is running for it" in output  # itself, still running
    assert (
        f"prune {LOCKED}: kept, not in the analytics database: the files of {', '.join(sorted(JOBS))} are not loaded"
    ) in output
    assert all(path.is_file() for path in receipts(data, LOCKED))
    second = analytics.meltano("lfs-to-analytics", day=LOCKED.isoformat(), **backfill)
    assert second.returncode == 0, second.stderr[-4000:]
    output = second.stdout + second.stderr
    assert f"analytics {LOCKED}: published 2 tables, 6 rows" in output
    assert f"prune {OLD}: removed" in output  # loaded, and older than RETENTION_DAYS
    assert not any(path.exists() for path in receipts(data, OLD))


def test_a_day_republished_after_its_load_is_kept_until_loaded_or_forced(analytics: Analytics) -> None:
    publish_and_load(analytics, OLD)
    write_day(analytics.data_dir, OLD.isoformat(), JOBS[1], [details(1)])  # a step-1 rerun, newer than the load

    kept = prune(analytics)

    assert f"prune {OLD}: kept, not in the analytics database: the files of {JOBS[1]} are not loaded" in kept
    assert "make prune FORCE=1" in kept
    assert all(path.exists() for path in day_paths(analytics.data_dir, OLD))
    forced = analytics.invoke("prune", "--force", RETENTION_DAYS=KEEP)
    assert forced.returncode == 0, forced.stderr[-4000:]
    assert f"prune {OLD}: removed" in forced.stdout
    assert not any(path.exists() for path in day_paths(analytics.data_dir, OLD))


def test_a_run_for_a_day_retention_prunes_is_refused_in_one_line_and_writes_nothing(analytics: Analytics) -> None:
    write_day(analytics.data_dir, OLD.isoformat(), JOBS[0], [orders(1)])
    write_day(analytics.data_dir, OLD.isoformat(), JOBS[1], [details(1)])

    result = analytics.meltano("lfs-to-analytics", day=OLD.isoformat(), RETENTION_DAYS=KEEP)

    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if "refused:" in line]
    assert line.endswith(  # after Meltano's log prefix
        f"pipeline claim failed: refused: {OLD} is older than RETENTION_DAYS={KEEP} keeps "
        f"(from {TODAY - dt.timedelta(days=int(KEEP))}), so the next prune would remove it; to run it all the same, "
        f"set PIPELINE_FORCE_OLD_DAY=1 for this run (make run DATE={OLD} FORCE=1)"
    )
    with analytics.connect() as conn:
        assert conn.execute("SELECT to_regclass('pipeline.loaded_tables')").fetchone()[0] is None
    assert not (analytics.data_dir / "results" / OLD.isoformat()).exists()
