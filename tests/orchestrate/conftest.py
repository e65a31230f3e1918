"""Fixtures for the orchestration tests: Airflow's venv, the DagBag report, fake projects.

Airflow lives in its own virtualenv (.meltano/utilities/airflow/venv, made by
`meltano install`), because Airflow and Meltano need different SQLAlchemy versions;
the tests that need Airflow run it there by subprocess. The generator (package
``dag_generator``) is installed in both that venv and the project's .venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.orchestrate.fake_project import write_fake_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ORCHESTRATE = PROJECT_ROOT / "orchestrate"
DAGS_FOLDER = ORCHESTRATE / "dags"
AIRFLOW_VENV = PROJECT_ROOT / ".meltano" / "utilities" / "airflow" / "venv"


@pytest.fixture(scope="session")
def airflow_venv() -> Path:
    """Airflow's virtualenv, made by `meltano install` (`make setup`)."""
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        pytest.fail("Airflow is not installed: run `make setup` (or `.venv/bin/meltano install utility airflow`)")
    return AIRFLOW_VENV


def dagbag_report(airflow_venv: Path, airflow_home: Path, **env: str) -> dict[str, Any]:
    """The report on this project's DAG folder as Airflow parses it (dagbag_report.py), with ``env`` set."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "MELTANO_PROJECT_ROOT": str(PROJECT_ROOT),
        **env,
    }
    result = subprocess.run(
        [str(airflow_venv / "bin" / "python"), str(Path(__file__).with_name("dagbag_report.py")), str(DAGS_FOLDER)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def dagbag(airflow_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The report on this project's DAG folder, as Airflow parses it (see dagbag_report.py)."""
    return dagbag_report(airflow_venv, tmp_path_factory.mktemp("airflow_home"))


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[[str], Path]:
    """Write a Meltano project whose meltano.yml is the given text (and a fake meltano)."""

    def make(meltano_yml: str, name: str = "project") -> Path:
        return write_fake_project(tmp_path / name, textwrap.dedent(meltano_yml))

    return make


class Airflow:
    """The Airflow CLI of the plugin's venv with a throwaway AIRFLOW_HOME and a chosen project."""

    def __init__(self, venv: Path, home: Path, project: Path, extra_env: dict[str, str] | None = None) -> None:
        self.venv = venv
        self.env = {
            **os.environ,
            **(extra_env or {}),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "MELTANO_PROJECT_ROOT": str(project),
        }
        self.env.pop("VIRTUAL_ENV", None)
        self.env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `airflow <args>`; output is returned, not checked."""
        return subprocess.run(
            [str(self.venv / "bin" / "airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def python(self, script: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a Python script with the venv's interpreter and this environment."""
        return subprocess.run(
            [str(self.venv / "bin" / "python"), str(script), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def migrated_airflow(venv: Path, home: Path, project: Path, extra_env: dict[str, str] | None = None) -> Airflow:
    """An Airflow with a freshly migrated SQLite metadata DB in ``home``."""
    airflow = Airflow(venv, home, project, extra_env)
    result = airflow.run("db", "migrate")
    assert result.returncode == 0, result.stdout + result.stderr
    return airflow


@pytest.fixture
def airflow_for(airflow_venv: Path, tmp_path: Path) -> Callable[..., Airflow]:
    """An Airflow with a migrated SQLite DB in tmp_path, parsing the DAGs of ``project``."""

    def make(project: Path, extra_env: dict[str, str] | None = None) -> Airflow:
        return migrated_airflow(airflow_venv, tmp_path / "airflow_home", project, extra_env)

    return make
