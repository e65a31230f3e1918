"""scripts/airflow_auth.py: the login's passwords file follows the environment at every start."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "airflow_auth.py"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_ADMIN_")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env={**clean, **env}, capture_output=True, text=True, check=False
    )


def test_the_password_changes_when_the_environment_does(tmp_path: Path) -> None:
    passwords = tmp_path / "home" / "passwords.json"
    first = run({"AIRFLOW_ADMIN_USER": "ops", "AIRFLOW_ADMIN_PASSWORD": "one"}, str(passwords))
    assert (first.returncode, first.stdout) == (0, "ops:admin\n")
    assert json.loads(passwords.read_text()) == {"ops": "one"}
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
    # Airflow itself never changes a password already in the file; a new start does.
    second = run({"AIRFLOW_ADMIN_USER": "ops", "AIRFLOW_ADMIN_PASSWORD": "two"}, str(passwords))
    assert second.returncode == 0
    assert json.loads(passwords.read_text()) == {"ops": "two"}


def test_values_missing_from_the_environment_come_from_the_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# login\nAIRFLOW_ADMIN_USER=admin\nAIRFLOW_ADMIN_PASSWORD='s3cret#1'\n")
    result = run({}, str(tmp_path / "p.json"), str(dotenv))
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "p.json").read_text()) == {"admin": "s3cret#1"}


def test_a_missing_or_unusable_setting_is_one_line(tmp_path: Path) -> None:
    missing = run({"AIRFLOW_ADMIN_USER": "admin"}, str(tmp_path / "p.json"))
    assert (missing.returncode, missing.stderr) == (
        1,
        "airflow login: AIRFLOW_ADMIN_PASSWORD not set in the environment: set it (see .env.example)\n",
    )
    odd = run({"AIRFLOW_ADMIN_USER": "a:b", "AIRFLOW_ADMIN_PASSWORD": "x"}, str(tmp_path / "p.json"))
    assert odd.returncode == 1
    assert "AIRFLOW_ADMIN_USER='a:b'" in odd.stderr
    assert not (tmp_path / "p.json").exists()


def test_the_default_password_works_but_is_warned_about_at_every_start(tmp_path: Path) -> None:
    result = run({"AIRFLOW_ADMIN_USER": "admin", "AIRFLOW_ADMIN_PASSWORD": "admin"}, str(tmp_path / "p.json"))
    assert (result.returncode, result.stdout) == (0, "admin:admin\n")
    assert result.stderr == (
        "airflow login: WARNING: AIRFLOW_ADMIN_PASSWORD is the default 'admin', which anyone who reaches the UI "
        "tries first: set another one in .env\n"
    )
    assert json.loads((tmp_path / "p.json").read_text()) == {"admin": "admin"}
    other = run({"AIRFLOW_ADMIN_USER": "admin", "AIRFLOW_ADMIN_PASSWORD": "not-the-default"}, str(tmp_path / "p.json"))
    assert (other.returncode, other.stderr) == (0, "")
