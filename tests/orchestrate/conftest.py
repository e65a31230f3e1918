"""Fixtures for the orchestration tests: the generator on sys.path, Airflow's venv, fake projects.

Airflow lives in its own virtualenv (.meltano/utilities/airflow/venv, made by
`meltano install`), because Airflow and Meltano need different SQLAlchemy versions;
the tests that need Airflow run it there by subprocess and skip when it is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ORCHESTRATE = PROJECT_ROOT / "orchestrate"
DAGS_FOLDER = ORCHESTRATE / "dags"
AIRFLOW_VENV = PROJECT_ROOT / ".meltano" / "utilities" / "airflow" / "venv"

if str(ORCHESTRATE) not in sys.path:
    sys.path.insert(0, str(ORCHESTRATE))

# A stand-in for `.venv/bin/meltano` in fake projects: records the day it was given and
# fails for jobs whose name starts with `fail`, so Airflow's side is tested in seconds.
FAKE_MELTANO = textwrap.dedent(
    """\
    #!/bin/sh
    echo "fake meltano $* PIPELINE_DATE=$PIPELINE_DATE"
    mkdir -p "$PWD/out" && echo "$PIPELINE_DATE" > "$PWD/out/$2-${PIPELINE_DATE:-UNDATED}"
    case "$2" in fail*) exit 3;; esac
    """
)


@pytest.fixture(scope="session")
def airflow_venv() -> Path:
    """Airflow's virtualenv; the test is skipped when `meltano install` has not made it."""
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        pytest.skip("Airflow is not installed: run `make setup` (or `.venv/bin/meltano install utility airflow`)")
    return AIRFLOW_VENV


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[[str], Path]:
    """Write a Meltano project whose meltano.yml is the given text (and a fake meltano)."""

    def make(meltano_yml: str, name: str = "project") -> Path:
        root = tmp_path / name
        (root / ".venv" / "bin").mkdir(parents=True)
        (root / "meltano.yml").write_text(textwrap.dedent(meltano_yml), encoding="utf-8")
        fake = root / ".venv" / "bin" / "meltano"
        fake.write_text(FAKE_MELTANO, encoding="utf-8")
        fake.chmod(0o755)
        return root

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


def _psql(*args: str, database: str = "postgres") -> None:
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", PG_HOST, "-U", PG_USER, "-d", database, *args],
        check=True,
        capture_output=True,
        text=True,
    )


PG_HOST = os.environ.get("TAP_POSTGRES_HOST", "127.0.0.1")
PG_USER = os.environ.get("TAP_POSTGRES_USER", "postgres")


@pytest.fixture
def pipeline_day_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A throwaway environment for the real jobs: fresh source and analytics DBs, DATA_DIR, the CSV.

    The variables the plugins read (DATA_DIR, TAP_POSTGRES_DATABASE, TARGET_POSTGRES_DATABASE,
    ORDER_DETAILS_CSV, ...), to be passed to Airflow's processes. Sources come from
    NORTHWIND_DATA_DIR, else data/sources (where `make setup` puts them). When tests/conftest.py
    provides the project's own database fixtures, this one should delegate to them.
    """
    sources = Path(os.environ.get("NORTHWIND_DATA_DIR") or PROJECT_ROOT / "data" / "sources")
    if not (sources / "northwind.sql").is_file() or not (sources / "order_details.csv").is_file():
        pytest.skip(f"no northwind.sql and order_details.csv in {sources}: run `make setup` or set NORTHWIND_DATA_DIR")
    suffix = uuid.uuid4().hex[:8]
    source_db, analytics_db = f"e2e_airflow_src_{suffix}", f"e2e_airflow_analytics_{suffix}"
    _psql("-c", f"create database {source_db}")
    _psql("-c", f"create database {analytics_db}")
    try:
        _psql("-f", str(sources / "northwind.sql"), database=source_db)
        # order_details comes from the CSV source, not from Postgres.
        _psql("-c", "drop table if exists order_details", database=source_db)
        csv = tmp_path / "sources" / "order_details.csv"
        csv.parent.mkdir()
        shutil.copyfile(sources / "order_details.csv", csv)
        yield {
            "DATA_DIR": str(tmp_path / "data"),
            "ORDER_DETAILS_CSV": str(csv),
            "TAP_POSTGRES_HOST": PG_HOST,
            "TAP_POSTGRES_PORT": "5432",
            "TAP_POSTGRES_USER": PG_USER,
            "TAP_POSTGRES_PASSWORD": "postgres",
            "TAP_POSTGRES_DATABASE": source_db,
            "TARGET_POSTGRES_HOST": PG_HOST,
            "TARGET_POSTGRES_PORT": "5432",
            "TARGET_POSTGRES_USER": PG_USER,
            "TARGET_POSTGRES_PASSWORD": "postgres",
            "TARGET_POSTGRES_DATABASE": analytics_db,
        }
    finally:
        for database in (source_db, analytics_db):
            _psql("-c", f"drop database if exists {database} with (force)")
