"""Each step's failures in their class: what a retry may pass is transient, what it would meet again permanent.

Airflow retries a transient failure and fails a permanent one at once, from the class
the failing component records in ``PIPELINE_FAILURE_FILE`` (``pipeline.core.errors``).
Every connection failure, lock timeout and race with a concurrent rerun must be
transient; bad data and bad settings permanent. Elsewhere: a run lock held by another
run (``test_crash``), a lost run lock (``test_fencing``), the publish's lock_timeout
(``tests/analytics/test_step2``), bad CSV rows (``test_failures``).

The tests share one pipeline with DAY published by both step-1 jobs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.days.receipts import read_day
from pipeline.jobs import STEP2_JOB
from tests.analytics.days import as_date
from tests.conftest import Pipeline
from tests.integration.test_crash import DAY, REACH_TIMEOUT, PausedRun, start_paused
from tests.integration.test_crash import paused as paused_runs

pytestmark = pytest.mark.integration

paused = paused_runs  # the fixture: whatever is left of a paused run is killed
CLOSED_PORT = "1"  # nothing listens there: the connection is refused at once


@pytest.fixture(scope="module")
def step1_day(shared_pipeline: Pipeline) -> Pipeline:
    for job in ("postgres-to-lfs", "csv-to-lfs"):
        shared_pipeline.run_ok(job, day=DAY)
    return shared_pipeline


def recorded(path: Path) -> dict:
    """The first failure record (the one that decides, as all these failures record one)."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records, "the failure recorded no cause"
    return records[0]


def run_failing(pipeline: Pipeline, tmp_path: Path, *command: str, **overrides: str) -> dict:
    """Run ``meltano run <job>`` (or ``meltano invoke pipeline ...``) expecting a failure; its record."""
    failures = tmp_path / "failures.jsonl"
    env = {"PIPELINE_FAILURE_FILE": str(failures), **overrides}
    invoked = command[0] == "invoke"
    result = pipeline.invoke(*command[1:], **env) if invoked else pipeline.run(*command, day=DAY, **env)
    assert result.returncode != 0, result.stderr[-3000:]
    return recorded(failures)


CASES = [
    # connection failures: transient
    ("claim", ("csv-to-lfs",), {"TARGET_POSTGRES_PORT": CLOSED_PORT}, True, "cannot reach the analytics database"),
    ("extract", ("postgres-to-lfs",), {"TAP_POSTGRES_PORT": CLOSED_PORT}, True, "cannot reach the source database"),
    ("step 2", (STEP2_JOB,), {"TARGET_POSTGRES_PORT": CLOSED_PORT}, True, "cannot reach the analytics database"),
    (
        "publish",
        ("invoke", "publish-analytics"),
        {"PIPELINE_DATE": DAY, "TARGET_POSTGRES_PORT": CLOSED_PORT},
        True,
        "cannot reach the analytics database",
    ),
    (
        "export",
        ("invoke", "export"),
        {"PIPELINE_DATE": DAY, "TARGET_POSTGRES_PORT": CLOSED_PORT},
        True,
        "cannot reach the analytics database",
    ),
    (
        "prune",
        ("invoke", "prune"),
        {"RETENTION_DAYS": "1", "TARGET_POSTGRES_PORT": CLOSED_PORT},
        True,
        "cannot connect to TARGET_POSTGRES_* database",
    ),
    # bad settings: permanent
    ("claim", ("csv-to-lfs",), {"TARGET_POSTGRES_DATABASE": "no_such_db"}, False, '"no_such_db" does not exist'),
    ("extract", ("postgres-to-lfs",), {"TAP_POSTGRES_DATABASE": "no_such_db"}, False, '"no_such_db" does not exist'),
    ("claim", ("csv-to-lfs",), {"PIPELINE_LOCK_WAIT_SECONDS": "ten"}, False, "PIPELINE_LOCK_WAIT_SECONDS='ten'"),
    ("publish", (STEP2_JOB,), {"PIPELINE_LOCK_TIMEOUT": "soon"}, False, "PIPELINE_LOCK_TIMEOUT='soon'"),
    ("prune", ("invoke", "prune"), {"RETENTION_DAYS": "ninety"}, False, "RETENTION_DAYS='ninety'"),
]


@pytest.mark.parametrize(
    ("step", "command", "overrides", "transient", "message"),
    CASES,
    ids=[f"{case[0]}-{'transient' if case[3] else 'permanent'}-{index}" for index, case in enumerate(CASES)],
)
def test_a_failure_is_recorded_in_its_class(
    step1_day: Pipeline,
    tmp_path: Path,
    step: str,
    command: tuple[str, ...],
    overrides: dict[str, str],
    transient: bool,
    message: str,
) -> None:
    record = run_failing(step1_day, tmp_path, *command, **overrides)

    assert record["transient"] is transient, record
    assert message in record["message"], record


def test_step2_racing_a_step1_rerun_that_is_publishing_fails_as_transient(
    step1_day: Pipeline, paused: list[PausedRun], tmp_path: Path
) -> None:
    run = start_paused(step1_day, "postgres-to-lfs", "publish-swap", tmp_path)  # no receipt until it goes on
    paused.append(run)

    record = run_failing(step1_day, tmp_path, STEP2_JOB)
    run.marker.unlink()

    assert record["transient"] is True, record
    assert "postgres-to-lfs is writing the day now" in record["message"], record
    assert run.process.wait(timeout=REACH_TIMEOUT) == 0, run.log.read_text()[-4000:]


def test_step2_reading_a_published_file_that_was_damaged_fails_as_permanent(
    step1_day: Pipeline, tmp_path: Path
) -> None:
    table = next(t for t in read_day(step1_day.data_dir, as_date(DAY), ["csv-to-lfs"]) if t.table == "order_details")
    original = table.path.read_bytes()
    table.path.write_bytes(original + b"10248,42,9.8,10,0\n")
    try:
        record = run_failing(step1_day, tmp_path, STEP2_JOB)
    finally:
        table.path.write_bytes(original)

    assert record["transient"] is False, record
    assert "the file changed after step 1 wrote it" in record["message"], record
