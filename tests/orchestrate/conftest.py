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

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ORCHESTRATE = PROJECT_ROOT / "orchestrate"
DAGS_FOLDER = ORCHESTRATE / "dags"
AIRFLOW_VENV = PROJECT_ROOT / ".meltano" / "utilities" / "airflow" / "venv"

if str(ORCHESTRATE) not in sys.path:
    sys.path.insert(0, str(ORCHESTRATE))

# A stand-in for `.venv/bin/meltano` in fake projects, so Airflow's side is tested in seconds.
# It appends "<PIPELINE_DATE> <FAKE_SETTING>" to out/<job>-<day> and, by the job's name:
#   fail*   exits 3 without recording why (a crash)
#   bad*    records a permanent failure in PIPELINE_FAILURE_FILE, exits 1
#   flaky*  records a transient failure on its first attempt of a day, succeeds on the next
# A successful job writes a receipt listing two tables (alpha, beta) under DATA_DIR/_runs.
FAKE_MELTANO = textwrap.dedent(
    """\
    #!/bin/sh
    echo "fake meltano $* PIPELINE_DATE=$PIPELINE_DATE"
    out="$PWD/out/$2-${PIPELINE_DATE:-UNDATED}"
    mkdir -p "$PWD/out" && echo "$PIPELINE_DATE ${FAKE_SETTING:-}" >> "$out"
    record() {
      printf '{"component": "fake-%s", "transient": %s, "message": "%s"}\\n' "$2" "$1" "$3" >> "$PIPELINE_FAILURE_FILE"
    }
    case "$2" in
      fail*) exit 3;;
      bad*) record false "$2" "bad input in fake.csv line 3: 2 fields, expected 3"; exit 1;;
      flaky*) if [ "$(wc -l < "$out")" -lt 2 ]; then record true "$2" "database at 127.0.0.1:1 is down"; exit 1; fi;;
    esac
    receipts="${DATA_DIR:-data}/_runs/$2"
    mkdir -p "$receipts" && echo '{"tables": {"alpha": {}, "beta": {}}}' > "$receipts/$PIPELINE_DATE.json"
    """
)


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
