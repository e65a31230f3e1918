"""What a failed job means for Airflow, and which day a run is (pure rules, no Airflow needed)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from dag_generator.outcome import (
    Decision,
    UpstreamRun,
    classify,
    day_end,
    day_of,
    read_failures,
    upstream_verdict,
)
from pipeline.core.errors import PipelineError, TransientPipelineError, report_failure


def test_a_day_is_the_utc_date_of_the_logical_date_whatever_its_time() -> None:
    utc = dt.UTC
    assert day_of(dt.datetime(2024, 1, 2, 0, 0, tzinfo=utc)) == dt.date(2024, 1, 2)
    assert day_of(dt.datetime(2024, 1, 2, 23, 59, 59, 999999, tzinfo=utc)) == dt.date(2024, 1, 2)
    # 2024-01-03 00:30 in UTC+02:00 is still 2024-01-02 in UTC.
    assert day_of(dt.datetime(2024, 1, 3, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == dt.date(2024, 1, 2)
    assert day_of(None) is None
    assert day_end(dt.date(2024, 1, 2)) == dt.datetime(2024, 1, 3, tzinfo=utc)
    with pytest.raises(ValueError, match="no time zone"):
        day_of(dt.datetime(2024, 1, 2))


def record(path: Path, component: str, exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> None:
    """Record a failure as the project's components do (pipeline.core.errors.report_failure)."""
    monkeypatch.setenv("PIPELINE_FAILURE_FILE", str(path))
    report_failure(component, exc)


def test_a_permanent_record_fails_at_once_even_after_a_transient_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "failures.jsonl"
    record(path, "target-analytics", TransientPipelineError("analytics database is down"), monkeypatch)
    record(path, "tap-typed-csv", PipelineError("order_details.csv line 7: 4 fields, expected 5"), monkeypatch)
    outcome = classify("csv-to-lfs", 1, read_failures(path))
    assert (outcome.transient, outcome.cause) == (
        False,
        "tap-typed-csv: order_details.csv line 7: 4 fields, expected 5",
    )


def test_only_transient_records_are_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "failures.jsonl"
    record(path, "pipeline", TransientPipelineError("lock held by another run of lfs-to-analytics"), monkeypatch)
    outcome = classify("lfs-to-analytics", 1, read_failures(path))
    assert (outcome.transient, outcome.cause) == (True, "pipeline: lock held by another run of lfs-to-analytics")


def test_a_crash_without_a_record_counts_as_transient(tmp_path: Path) -> None:
    outcome = classify("csv-to-lfs", 137, read_failures(tmp_path / "missing.jsonl"))
    assert outcome.transient
    assert "exited with code 137 without recording a cause" in outcome.cause


def test_a_garbled_record_is_permanent_and_shown(tmp_path: Path) -> None:
    path = tmp_path / "failures.jsonl"
    path.write_text("not json at all\n" + json.dumps({"component": "x", "transient": True, "message": "m"}) + "\n")
    outcome = classify("job", 1, read_failures(path))
    assert (outcome.transient, outcome.cause) == (False, "?: not json at all")


AT = dt.datetime(2024, 1, 3, 9, 0, tzinfo=dt.UTC)
LATER = AT + dt.timedelta(minutes=5)


def test_a_day_published_by_make_run_is_accepted_at_once() -> None:
    assert upstream_verdict(AT, None).decision is Decision.ACCEPT
    # Also after a failed Airflow run of the day, fixed by `make run` later.
    verdict = upstream_verdict(LATER, UpstreamRun("scheduled__1", "failed", AT))
    assert verdict.decision is Decision.ACCEPT
    assert "receipt of 2024-01-03T09:05:00Z is newer" in verdict.reason


def test_a_newest_failed_run_fails_at_once_even_beside_an_older_receipt() -> None:
    for receipt_at in (None, AT):
        verdict = upstream_verdict(receipt_at, UpstreamRun("manual__2", "failed", LATER))
        assert (verdict.decision, verdict.reason) == (Decision.FAIL, "its newest run manual__2 failed")


def test_a_newer_run_that_has_not_finished_is_waited_for() -> None:
    assert upstream_verdict(AT, UpstreamRun("r", "running", LATER)).decision is Decision.WAIT
    # Queued or cleared and queued again: not started, so newer than any receipt.
    assert upstream_verdict(LATER, UpstreamRun("r", "queued", None)).decision is Decision.WAIT
    assert upstream_verdict(None, None).reason == "no run and no receipt of it yet"
    assert upstream_verdict(None, None).decision is Decision.WAIT


def test_a_run_that_published_the_receipt_is_done_with_it() -> None:
    # Publishing is a step-1 job's last task: its receipt, newer than the run's start, is the day.
    assert upstream_verdict(LATER, UpstreamRun("r", "running", AT)).decision is Decision.ACCEPT
    assert upstream_verdict(None, UpstreamRun("r", "success", AT)).decision is Decision.ACCEPT
