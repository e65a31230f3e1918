"""One real day through Airflow: the step-1 DAGs, then step 2 through its sensors.

`airflow dags test` runs each DAG of this project, with its real Meltano jobs, on a
throwaway environment (fresh databases and DATA_DIR from the `pipeline` fixture) and a
throwaway Airflow home. Slow (each job starts Meltano and two plugins): marked
integration. Needs `make setup` (the plugins and the source files) and Postgres.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.connections import ANALYTICS
from tests.conftest import Pipeline

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAY = "2024-01-02"
STEP_1 = {"daily-postgres-to-lfs": "postgres-to-lfs", "daily-csv-to-lfs": "csv-to-lfs"}
STEP_2 = ("daily-lfs-to-analytics", "lfs-to-analytics")


def states(airflow: Any, dag_id: str) -> tuple[str, dict[str, str]]:
    with sqlite3.connect(Path(airflow.env["AIRFLOW_HOME"]) / "airflow.db") as db:
        ((run_id, state),) = db.execute("select run_id, state from dag_run where dag_id = ?", (dag_id,)).fetchall()
        tasks = db.execute(
            "select task_id, state from task_instance where dag_id = ? and run_id = ?", (dag_id, run_id)
        ).fetchall()
    return state, dict(tasks)


@pytest.mark.integration
def test_a_real_day_through_airflow(airflow_for: Callable[..., Any], pipeline: Pipeline) -> None:
    # No retries: a failing job then fails the test at once, not after the retry delays.
    airflow = airflow_for(PROJECT_ROOT, {**pipeline.env, "MELTANO_DAGS_RETRIES": "0"})
    data_dir = pipeline.data_dir

    for dag_id, job in STEP_1.items():
        result = airflow.run("dags", "test", dag_id, DAY, timeout=900)
        assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
        assert states(airflow, dag_id) == ("success", {job: "success"})
        receipt = json.loads((data_dir / "_runs" / job / f"{DAY}.json").read_text())
        assert receipt["date"] == DAY
        assert receipt["tables"]

    dag_id, job = STEP_2
    result = airflow.run("dags", "test", dag_id, DAY, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert states(airflow, dag_id) == (
        "success",
        {
            "start-upstream-runs": "success",
            "wait-for-daily-postgres-to-lfs": "success",
            "wait-for-daily-csv-to-lfs": "success",
            job: "success",
        },
    )

    # Every file the day wrote is under a path that names the day (no undated paths).
    written = [p.relative_to(data_dir) for p in data_dir.rglob("*") if p.is_file()]
    assert [p for p in written if DAY not in p.as_posix()] == []
    assert (data_dir / "csv" / DAY / "order_details.csv").is_file()
    assert (data_dir / "postgres" / "orders" / DAY / "orders.csv").is_file()
    # The day's result reached the analytics database and the export.
    with pipeline.connect(ANALYTICS) as conn:
        in_view = conn.execute(
            "SELECT count(*) FROM pipeline.orders_with_details WHERE pipeline_date = %s", (DAY,)
        ).fetchone()
    assert in_view == (2155,)
    assert len(json.loads((data_dir / "results" / DAY / "orders_with_details.json").read_text())) == 2155
