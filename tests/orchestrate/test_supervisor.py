"""dag_generator/supervisor.py in a real task (`airflow dags test`): the one place that uses Airflow's task runner.

It sends Airflow's request messages over the task runner's supervisor channel, which
is no public API: this test fails when an Airflow upgrade changes what the generated
DAGs rely on. The latest run of another DAG strictly before an instant (the sensors
ask for the instant a day ends), the clearing of an existing run, the start of a new
one, and a refusal answered, not raised.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.orchestrate.conftest import migrated_airflow

PROBE_DAGS = Path(__file__).with_name("supervisor_dags")
UPSTREAM_AT = "2024-01-02T05:00:00+00:00"


def test_a_task_finds_clears_and_starts_another_dags_runs(airflow_venv: Path, tmp_path: Path) -> None:
    airflow = migrated_airflow(airflow_venv, tmp_path / "airflow_home", tmp_path)
    answers_file = tmp_path / "answers.json"
    airflow.env.update({"AIRFLOW__CORE__DAGS_FOLDER": str(PROBE_DAGS), "SUPERVISOR_ANSWERS": str(answers_file)})

    upstream = airflow.run("dags", "test", "upstream", UPSTREAM_AT)
    assert upstream.returncode == 0, (upstream.stdout + upstream.stderr)[-3000:]
    probe = airflow.run("dags", "test", "probe", "2024-01-02T10:00:00+00:00")
    assert probe.returncode == 0, (probe.stdout + probe.stderr)[-3000:]

    answers = json.loads(answers_file.read_text())
    found = answers["found"]
    assert found is not None, answers
    assert (found["logical_date"], found["state"]) == (UPSTREAM_AT, "success")
    assert answers["before_its_own_instant"] is None  # strictly before: a next day's midnight run is not this day's
    assert answers["cleared"] is None
    assert answers["started"] is None
    assert "DAGRUN_ALREADY_EXISTS" in str(answers["started_again"])

    with sqlite3.connect(tmp_path / "airflow_home" / "airflow.db") as db:
        runs = dict(db.execute("select run_id, state from dag_run where dag_id = 'upstream'").fetchall())
    # Cleared: it runs again (queued for the scheduler); started: a new run, also queued.
    assert runs == {found["run_id"]: "queued", "started-by-probe": "queued"}
