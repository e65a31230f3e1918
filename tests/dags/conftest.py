"""Run the DagBag report in Airflow's own virtualenv (see dagbag_report.py for why)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_PYTHON = PROJECT_ROOT / ".meltano" / "utilities" / "airflow" / "venv" / "bin" / "python"
DAGS_FOLDER = PROJECT_ROOT / "orchestrate" / "dags"


@pytest.fixture(scope="session")
def dagbag(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The report on this project's DAG folder, as Airflow parses it."""
    if not AIRFLOW_PYTHON.exists():
        pytest.skip("Airflow is not installed: run `make setup` (or `.venv/bin/meltano install utility airflow`)")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow_home")),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "MELTANO_PROJECT_ROOT": str(PROJECT_ROOT),
    }
    result = subprocess.run(
        [str(AIRFLOW_PYTHON), str(Path(__file__).with_name("dagbag_report.py")), str(DAGS_FOLDER)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
