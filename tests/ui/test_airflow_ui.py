"""The Airflow UI in a real browser: log in, see the DAGs, trigger a day from the dialog, see step 2 succeed.

A real Airflow (tests/orchestrate/airflow_server.py) over a fake project (jobs that
only record their day), driven by Debian's chromium through Playwright in the UI
venv (drive_airflow_ui.py). Screenshots of each step go to UI_TEST_SCREENSHOTS
(`make ui-test`: orchestrate/airflow/ui-test/), else to the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.orchestrate.airflow_server import ADMIN, AirflowServer, postgres_metadata_db
from tests.orchestrate.conftest import AIRFLOW_VENV
from tests.orchestrate.fake_project import FAKE, write_fake_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UI_PYTHON = PROJECT_ROOT / ".venv-ui" / "bin" / "python"
DAG_IDS = ["nightly-a", "nightly-b", "nightly-combine"]


@pytest.fixture
def airflow(tmp_path: Path) -> Iterator[AirflowServer]:
    root = write_fake_project(tmp_path / "project", FAKE)
    with postgres_metadata_db() as db_url:
        server = AirflowServer(AIRFLOW_VENV, tmp_path / "airflow", root, db_url=db_url)
        try:
            server.start(DAG_IDS)
            yield server
        finally:
            server.stop()


def test_an_operator_triggers_a_day_from_the_ui_and_sees_step_2_succeed(airflow: AirflowServer, tmp_path: Path) -> None:
    assert UI_PYTHON.exists(), "run `make ui-test` (it makes .venv-ui with Playwright)"
    shots = Path(os.environ.get("UI_TEST_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    result = subprocess.run(
        [
            str(UI_PYTHON),
            str(Path(__file__).with_name("drive_airflow_ui.py")),
            airflow.url,
            *ADMIN,
            "nightly-combine",
            "combine",
            str(shots),
            *DAG_IDS,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert "/auth/login" in seen["login_url"]  # anonymous visitors are sent to the login
    assert seen["dags_seen"] == DAG_IDS
    assert re.fullmatch(r"\w{3} \d{1,2}, \d{4} \d{2}:\d{2}", seen["prefilled"])  # now, with a time of day
    assert seen["run_state"] == "Success"
    assert seen["job_row"].startswith("combine Success")
    # The same as the REST API sees it: a day triggered at a time of day, step 1 started by the trigger.
    run = airflow.run("nightly-combine", seen["run_id"])
    assert (run["state"], run["conf"]) == ("success", {"rerun_step1": True})
    day = run["logical_date"][:10]
    for dag_id in ("nightly-a", "nightly-b"):
        states = [r["state"] for r in airflow.runs(dag_id) if r["logical_date"][:10] == day]
        assert states == ["success"]
    assert (airflow.project / "out" / f"combine-{day}").read_text().split()[0] == day
    assert sorted(p.name for p in shots.iterdir()) == ["2-dags.png", "3-trigger-dialog.png", "4-step-2-grid.png"]
