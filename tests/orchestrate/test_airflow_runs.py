"""Airflow's side of the DAGs, run for real (`airflow dags test`) on a fake project.

The fake project's `.venv/bin/meltano` only records the day it was given and fails
for jobs named `fail*` (see conftest), so these tests check Airflow's wiring in
about a minute without the real jobs: the day reaches the job, a failed job's log
ends with the rerun line, an undated run writes nothing, and an upstream failure
fails the downstream run instead of skipping it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dag_generator.texts import failure_line

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "orchestrate" / "dags"

FAKE = """\
version: 1
jobs:
  - name: extract-a
    tasks: [tap-a target-a]
  - name: fail-extract-b
    tasks: [tap-b target-b]
  - name: combine
    annotations:
      airflow:
        depends_on: [extract-a, fail-extract-b]
    tasks: [tap-c target-c]
schedules:
  - name: nightly-a
    interval: "@daily"
    job: extract-a
  - name: nightly-b
    interval: "@daily"
    job: fail-extract-b
    annotations:
      airflow:
        retries: 0
  - name: nightly-combine
    interval: "@daily"
    job: combine
"""
DAY = "2024-01-02"


def run_states(airflow: Any, dag_id: str) -> tuple[str, dict[str, str]]:
    """The state of the DAG's only run and of its tasks, read from the SQLite metadata DB.

    Straight from the DB: each `airflow` CLI call costs 10 s or more of imports here.
    """
    with sqlite3.connect(Path(airflow.env["AIRFLOW_HOME"]) / "airflow.db") as db:
        runs = db.execute("select run_id, state from dag_run where dag_id = ?", (dag_id,)).fetchall()
        assert len(runs) == 1, runs
        tasks = db.execute(
            "select task_id, state from task_instance where dag_id = ? and run_id = ?", (dag_id, runs[0][0])
        ).fetchall()
    return runs[0][1], dict(tasks)


def test_upstream_failure_fails_the_downstream_run_not_skips_it(
    make_project: Callable[..., Path], airflow_for: Callable[..., Any]
) -> None:
    root = make_project(FAKE)
    airflow = airflow_for(root)

    ok = airflow.run("dags", "test", "nightly-a", DAY)
    assert ok.returncode == 0, ok.stdout[-3000:]
    assert (root / "out" / f"extract-a-{DAY}").read_text().strip() == DAY

    failed = airflow.run("dags", "test", "nightly-b", DAY)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    line = failure_line("fail-extract-b", DAY)
    # Logged by the failure callback, after the traceback, with the cause before it.
    assert output.count(line) == 1, output[-3000:]
    assert output.rfind(line) > output.rfind("CAUSE: transient failure, retried: job fail-extract-b exited with code 3")
    assert output.rfind("CAUSE:") > output.rfind("Task failed with exception")

    downstream = airflow.run("dags", "test", "nightly-combine", DAY, timeout=120)
    assert downstream.returncode != 0
    assert f"upstream DAG nightly-b failed for {DAY}" in downstream.stdout + downstream.stderr
    state, tasks = run_states(airflow, "nightly-combine")
    assert state == "failed"
    assert tasks == {
        "start-upstream-runs": "success",
        "wait-for-nightly-a": "success",
        "wait-for-nightly-b": "failed",
        "combine": "upstream_failed",
    }
    assert not (root / "out" / f"combine-{DAY}").exists()


def test_a_run_without_logical_date_is_refused_and_writes_nothing(
    make_project: Callable[..., Path], airflow_for: Callable[..., Any]
) -> None:
    root = make_project(FAKE)
    airflow = airflow_for(root)
    result = airflow.python(Path(__file__).with_name("undated_run.py"), str(DAGS_FOLDER), "nightly-a", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"run_state": "failed", "logical_date": "None", "tasks": {"extract-a": "failed"}}
    assert "has no logical date" in result.stdout + result.stderr
    assert not (root / "out").exists()
