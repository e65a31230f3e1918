"""Fixtures for the orchestration tests: the generator on sys.path, Airflow's venv, fake projects.

Airflow lives in its own virtualenv (.meltano/utilities/airflow/venv, made by
`meltano install`), because Airflow and Meltano need different SQLAlchemy versions;
the tests that need Airflow run it there by subprocess and skip when it is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.orchestrate.fake_project import write_fake_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ORCHESTRATE = PROJECT_ROOT / "orchestrate"
DAGS_FOLDER = ORCHESTRATE / "dags"
AIRFLOW_VENV = PROJECT_ROOT / ".meltano" / "utilities" / "airflow" / "venv"

if str(ORCHESTRATE) not in sys.path:
    sys.path.insert(0, str(ORCHESTRATE))


@pytest.fixture(scope="session")
def airflow_venv() -> Path:
    """Airflow's virtualenv, made by `meltano install` (`make setup`)."""
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        pytest.fail("Airflow is not installed: run `make setup` (or `.venv/bin/meltano install utility airflow`)")
    return AIRFLOW_VENV


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
