"""DAG integrity, Astronomer style: the DAG folder as Airflow itself parses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dag_generator.plan import JOB_QUEUES_ENV
from pipeline.jobs import STEP1_JOBS
from pipeline.project import read_project
from tests.orchestrate.conftest import dagbag_report

PROJECT_ROOT = Path(__file__).resolve().parents[2]

PROJECT = read_project(PROJECT_ROOT)


def test_no_import_errors(dagbag: dict[str, Any]) -> None:
    assert dagbag["import_errors"] == {}


def test_one_dag_per_schedule_named_after_it(dagbag: dict[str, Any]) -> None:
    assert set(dagbag["dags"]) == {s.name for s in PROJECT.schedules if s.job}


def test_parsing_is_cheap(dagbag: dict[str, Any]) -> None:
    # Meltano's own generator shells out to `meltano schedule list`: about 2 s per parse.
    assert dagbag["parse_seconds"] < 1.5


def test_schedules_and_run_limits(dagbag: dict[str, Any]) -> None:
    for schedule in PROJECT.schedules:
        dag = dagbag["dags"][schedule.name]
        assert dag["timetable_type"] == "CronTriggerTimetable"
        assert "expression='0 0 * * *'" in dag["timetable"]  # @daily; UTC midnight, ds = that day
        assert dag["max_active_runs"] == 1
        assert dag["catchup"] is False
        assert "meltano" in dag["tags"]
        assert f"job:{schedule.job}" in dag["tags"]


def test_each_dag_runs_its_job_for_the_day(dagbag: dict[str, Any]) -> None:
    for schedule in PROJECT.schedules:
        dag = dagbag["dags"][schedule.name]
        task = dag["tasks"][schedule.job]
        assert task["type"] == "MeltanoJobOperator"
        assert (task["job"], task["root"]) == (schedule.job, str(PROJECT_ROOT))
        assert task["meltano"] == str(PROJECT_ROOT / ".venv" / "bin" / "meltano")
        assert task["retries"] >= 1
        assert task["retry_delay_seconds"] > 0
        assert task["retry_exponential_backoff"] > 1  # transient failures back off
        # Bounded: an hour by default (PIPELINE_JOB_TIMEOUT_MINUTES), one day at a time, backfills included.
        assert task["execution_timeout_seconds"] == 3600
        assert task["max_active_tis_per_dag"] == 1
        assert task["owner"]
        # No PIPELINE_JOB_QUEUES here: Airflow's default queue, which every Celery worker serves.
        assert {t["queue"] for t in dag["tasks"].values()} == {"default"}
        assert task["has_failure_callback"]
        assert task["has_retry_callback"]
        assert f".venv/bin/meltano run {schedule.job}" in dag["doc_md"]


def test_the_queue_setting_puts_each_dags_tasks_on_its_jobs_queue(
    airflow_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # What the compose test's distributed run sets: each step on the queue of its own worker.
    queues = {"postgres-to-lfs": "step1", "csv-to-lfs": "step1", "lfs-to-analytics": "step2"}
    setting = " ".join(f"{job}={queue}" for job, queue in queues.items())
    report = dagbag_report(airflow_venv, tmp_path_factory.mktemp("airflow_home"), **{JOB_QUEUES_ENV: setting})
    assert report["import_errors"] == {}
    for schedule in PROJECT.schedules:
        tasks = report["dags"][schedule.name]["tasks"]
        assert {t["queue"] for t in tasks.values()} == {queues[schedule.job]}, schedule.name


def test_sensors_wait_for_existing_dags_and_fail_instead_of_skipping(dagbag: dict[str, Any]) -> None:
    dags = dagbag["dags"]
    for dag_id, dag in dags.items():
        sensors = {k: t for k, t in dag["tasks"].items() if t["type"] == "SameDayRunSensor"}
        for task_id, sensor in sensors.items():
            assert sensor["upstream_dag_id"] in dags, f"{dag_id}.{task_id} waits for a DAG that does not exist"
            assert sensor["upstream_dag_id"] != dag_id
            assert sensor["mode"] == "reschedule"
            assert sensor["poke_interval"] <= 30  # step 2 starts soon after step 1
            # Bounded: at most as long as the upstream job with its 2 retries (3 hours and their delays).
            assert 3 * 3600 < sensor["timeout"] <= 4 * 3600
            # It reads that DAG's job's receipts too (a day done by `make run`).
            assert sensor["upstream_job"] == {s.name: s.job for s in PROJECT.schedules}[sensor["upstream_dag_id"]]
            assert sensor["soft_fail"] is False
            assert sensor["retries"] >= 1  # Airflow's reschedule race only: a failed upstream fails at once
            assert sensor["has_failure_callback"]
            assert sensor["upstream"] == ["start-upstream-runs"]
            assert sensor["downstream"] == [t for t in dag["tasks"] if dag["tasks"][t]["type"] == "MeltanoJobOperator"]
        if sensors:
            assert dag["params"] == {"rerun_step1": False}
            assert dag["tasks"]["start-upstream-runs"]["upstream_dag_ids"] == [
                s["upstream_dag_id"] for s in sensors.values()
            ]


def test_step_2_waits_for_both_step_1_dags_as_its_tap_gates(dagbag: dict[str, Any]) -> None:
    job_of = {s.name: s.job for s in PROJECT.schedules}
    step2 = dagbag["dags"]["daily-lfs-to-analytics"]
    waited = {t["upstream_dag_id"] for t in step2["tasks"].values() if t["type"] == "SameDayRunSensor"}
    assert {job_of[d] for d in waited} == set(STEP1_JOBS) == {"postgres-to-lfs", "csv-to-lfs"}
    assert step2["tasks"]["lfs-to-analytics"]["upstream"] == sorted(f"wait-for-{d}" for d in waited)
    for step1 in waited:
        assert [t["type"] for t in dagbag["dags"][step1]["tasks"].values()] == ["MeltanoJobOperator"]


def test_lineage_from_the_sources_to_the_result(dagbag: dict[str, Any]) -> None:
    dags = dagbag["dags"]
    postgres = dags["daily-postgres-to-lfs"]["tasks"]["postgres-to-lfs"]
    csv = dags["daily-csv-to-lfs"]["tasks"]["csv-to-lfs"]
    step2 = dags["daily-lfs-to-analytics"]["tasks"]["lfs-to-analytics"]
    assert postgres["outlets"] == ["AssetAlias:lfs://postgres/{folder}"]
    assert csv["outlets"] == ["Asset:lfs://csv/order_details"]
    # Step 2 reads what step 1 writes, and writes the analytics tables and the result.
    assert step2["inlets"] == sorted(postgres["outlets"] + csv["outlets"])
    assert "Asset:lfs://results/orders_with_details" in step2["outlets"]
    assert "Asset:analytics://pipeline/orders_with_details" in step2["outlets"]
