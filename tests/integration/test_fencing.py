"""A run that lost its run lock never publishes; a run that keeps it is never disturbed.

On a throwaway cluster of the test's own (``tests/integration/cluster.py``), each job
is stopped at its publish step (``pipeline.core.crashpoints``) with its lock held. Then:

* the cluster restarts, which ends every session and so the run's lock, as a failover
  or a terminated backend would. A newcomer run of the same job and day takes over
  and publishes; the paused run then goes on and must fail, as transient, leaving the
  newcomer's day as it is. Stopped inside a commit point (between two folder moves,
  before the export's swap), it goes no further. Paused earlier, while its Meltano
  record is still running, the newcomer must leave that record of a live run alone
  and be refused; the paused run must still fail without publishing;
* the server ends the run lock's session alone (a terminated backend): a newcomer
  claims the day, and the paused run, whose own session lives, must fail all the
  same;
* the server ends every session idle for two seconds (``idle_session_timeout``, the
  issue's reproduction): the paused run keeps its lock, a second run is refused, and
  the paused run goes on to publish.

The tests share one pipeline on the cluster and build on its day, in order.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipeline.core.connections import ADMIN, ANALYTICS, SOURCE
from pipeline.jobs import STEP2_JOB
from pipeline.setup.provision import provision
from tests.conftest import Pipeline, project_env
from tests.integration import test_crash
from tests.integration.cluster import Cluster, throwaway_cluster
from tests.integration.test_crash import (
    DAY,
    REACH_TIMEOUT,
    PausedRun,
    receipt,
    rerun,
    start_paused,
    step2_state,
)

pytestmark = pytest.mark.integration

paused = test_crash.paused  # the fixture: whatever is left of a paused run is killed

JOBS = ("postgres-to-lfs", "csv-to-lfs", STEP2_JOB)
IDLE_TIMEOUT = "2s"  # as in the reproduction


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as server:
        yield server


@pytest.fixture(scope="module")
def on_cluster(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory, source_files: dict[str, Path]) -> Pipeline:
    """A pipeline whose two databases live on the throwaway cluster, with DAY run once by all three jobs."""
    suffix = uuid.uuid4().hex[:10]
    data_dir = tmp_path_factory.mktemp("fencing") / "data"
    env = {
        **project_env(),
        f"{ADMIN}_USER": "postgres",
        f"{ADMIN}_PASSWORD": "",
        "DATA_DIR": str(data_dir),
        "ORDER_DETAILS_CSV": str(source_files["order_details.csv"]),
    }
    for prefix in (SOURCE, ANALYTICS):
        env |= {f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": str(cluster.port)}
    env |= {f"{SOURCE}_DATABASE": f"northwind_{suffix}", f"{ANALYTICS}_DATABASE": f"analytics_{suffix}"}
    provision(source_files["northwind.sql"], env)
    pipeline = Pipeline(env=env, data_dir=data_dir)
    for job in JOBS:
        pipeline.run_ok(job, day=DAY)
    return pipeline


def published_state(pipeline: Pipeline, job: str) -> object:
    """What readers see of the job's day: step 1's receipt, or step 2's analytics day and exported result."""
    return step2_state(pipeline) if job == STEP2_JOB else receipt(pipeline, job)


def failure_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_until_ended(cluster: Cluster, session: psycopg.Connection) -> None:
    """Return once the server has ended ``session`` (idle since it was opened), seen from other sessions."""
    pid = session.info.backend_pid
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                return
        time.sleep(0.2)
    pytest.fail(f"the server did not end the idle session {pid} (idle_session_timeout {IDLE_TIMEOUT})")


@pytest.mark.parametrize("job", JOBS)
def test_a_run_whose_lock_ended_with_a_restart_fails_as_transient_after_a_newcomer_published(
    cluster: Cluster,
    on_cluster: Pipeline,
    paused: list[PausedRun],
    tmp_path: Path,
    job: str,
) -> None:
    pipeline = on_cluster
    failures = tmp_path / "paused.jsonl"
    run = start_paused(pipeline, job, "before-publish", tmp_path, PIPELINE_FAILURE_FILE=str(failures))
    paused.append(run)

    cluster.restart()
    rerun(pipeline, job)  # the newcomer: the paused run's Meltano record has ended with its Singer pair
    newcomer_published = published_state(pipeline, job)
    run.marker.unlink()  # the paused run goes on

    assert run.process.wait(timeout=REACH_TIMEOUT) != 0
    (lost,) = failure_records(failures)
    assert lost["transient"] is True
    assert lost["message"].startswith(f"{job} for {DAY} lost its run lock: "), lost
    assert published_state(pipeline, job) == newcomer_published


@pytest.mark.parametrize("job", JOBS)
def test_a_run_whose_keeper_session_was_terminated_fails_as_transient_once_a_newcomer_claimed_the_day(
    cluster: Cluster, on_cluster: Pipeline, paused: list[PausedRun], tmp_path: Path, job: str
) -> None:
    pipeline = on_cluster
    before = published_state(pipeline, job)
    failures, newcomer_failures = tmp_path / "paused.jsonl", tmp_path / "newcomer.jsonl"
    run = start_paused(pipeline, job, "before-publish", tmp_path, PIPELINE_FAILURE_FILE=str(failures))
    paused.append(run)

    with psycopg.connect(cluster.conninfo(), autocommit=True) as admin:
        admin.execute(  # only the run lock's session ends, as a pooler or an administrator may end it
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE starts_with(application_name, 'pipeline-run ')"
        )
    newcomer = pipeline.run(job, day=DAY, PIPELINE_FAILURE_FILE=str(newcomer_failures), PIPELINE_LOCK_WAIT_SECONDS="1")
    run.marker.unlink()  # the paused run goes on, its own session alive

    # The newcomer claimed the day, then waited for the paused step's writer lock in vain.
    assert newcomer.returncode != 0
    (refusal,) = failure_records(newcomer_failures)
    assert "is still being written by an earlier run's leftover process" in refusal["message"], refusal
    assert run.process.wait(timeout=REACH_TIMEOUT) != 0
    (lost,) = failure_records(failures)
    assert lost["transient"] is True
    assert lost["message"].startswith(f"{job} for {DAY} lost its run lock: another run has claimed the day since"), lost
    assert published_state(pipeline, job) == before


@pytest.mark.parametrize(
    ("job", "point", "lost"),
    [
        ("postgres-to-lfs", "history-move", f"postgres-to-lfs for {DAY} lost its run lock: "),
        ("csv-to-lfs", "publish-swap", f"csv-to-lfs for {DAY} lost its run lock: "),
        (STEP2_JOB, "export-before-swap", ""),  # the export's own session ended too: it may say so first
    ],
    ids=["history-move", "publish-swap", "export-before-swap"],
)
def test_a_run_that_loses_its_lock_inside_a_commit_point_goes_no_further_and_fails_as_transient(
    cluster: Cluster,
    on_cluster: Pipeline,
    paused: list[PausedRun],
    tmp_path: Path,
    job: str,
    point: str,
    lost: str,
) -> None:
    pipeline = on_cluster
    failures = tmp_path / "paused.jsonl"
    results_before = step2_state(pipeline)[1]
    run = start_paused(pipeline, job, point, tmp_path, PIPELINE_FAILURE_FILE=str(failures))
    paused.append(run)

    cluster.restart()
    run.marker.unlink()  # the paused run goes on

    assert run.process.wait(timeout=REACH_TIMEOUT) != 0
    (record,) = failure_records(failures)
    assert record["transient"] is True
    assert record["message"].startswith(lost), record
    if job == STEP2_JOB:
        assert step2_state(pipeline)[1] == results_before  # the result folder was not replaced
    else:
        assert receipt(pipeline, job) is None  # cut short: no receipt, as a crash there leaves it
    rerun(pipeline, job)
    assert published_state(pipeline, job) is not None


@pytest.mark.parametrize("job", JOBS)
def test_a_newcomer_leaves_the_meltano_record_of_a_live_run_that_lost_its_lock_and_nothing_is_published(
    cluster: Cluster,
    on_cluster: Pipeline,
    paused: list[PausedRun],
    tmp_path: Path,
    job: str,
) -> None:
    pipeline = on_cluster
    before = published_state(pipeline, job)
    failures, newcomer_failures = tmp_path / "paused.jsonl", tmp_path / "newcomer.jsonl"
    run = start_paused(pipeline, job, "extract", tmp_path, PIPELINE_FAILURE_FILE=str(failures))
    paused.append(run)

    cluster.restart()
    newcomer = pipeline.run(job, day=DAY, PIPELINE_FAILURE_FILE=str(newcomer_failures), PIPELINE_LOCK_WAIT_SECONDS="1")
    run.marker.unlink()  # the paused run goes on

    assert newcomer.returncode != 0
    (refusal,) = failure_records(newcomer_failures)
    assert refusal["transient"] is True
    assert refusal["message"].startswith("refused: a run of "), refusal
    assert "is still alive" in refusal["message"], refusal
    assert run.process.wait(timeout=REACH_TIMEOUT) != 0
    # Step 1's publish finds its run's lock gone; step 2's load its session gone: transient, nothing published.
    assert [record["transient"] for record in failure_records(failures)] == [True], failure_records(failures)
    assert published_state(pipeline, job) == before
    rerun(pipeline, job)


@pytest.mark.parametrize("job", JOBS)
def test_a_run_keeps_its_lock_through_idle_session_timeout_and_a_second_run_is_refused(
    cluster: Cluster,
    on_cluster: Pipeline,
    paused: list[PausedRun],
    tmp_path: Path,
    job: str,
) -> None:
    pipeline = on_cluster
    failures = tmp_path / "second.jsonl"
    cluster.configure("idle_session_timeout", IDLE_TIMEOUT)  # a session takes it when it goes idle
    try:
        run = start_paused(pipeline, job, "before-publish", tmp_path)
        paused.append(run)
        with psycopg.connect(cluster.conninfo(), autocommit=True) as idle:
            # The paused run's sessions have been idle at least as long as this one.
            wait_until_ended(cluster, idle)
        second = pipeline.run(job, day=DAY, PIPELINE_FAILURE_FILE=str(failures), PIPELINE_LOCK_WAIT_SECONDS="1")
        run.marker.unlink()
        assert run.process.wait(timeout=REACH_TIMEOUT) == 0, run.log.read_text()[-4000:]
    finally:
        cluster.configure("idle_session_timeout", None)

    assert second.returncode != 0
    (refusal,) = failure_records(failures)
    assert refusal["transient"] is True
    assert refusal["message"].startswith(f"refused: {job} for {DAY} is already running"), refusal
