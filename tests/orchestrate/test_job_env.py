"""A job task's environment: .env as it is now, under what was set explicitly (no Airflow needed)."""

from __future__ import annotations

from pathlib import Path

from dag_generator.job_env import job_environment


def test_values_airflow_took_from_dotenv_at_start_are_read_again(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATA_DIR=new\nADDED=yes\n")
    started = {"DATA_DIR": "old", "REMOVED": "gone", "PATH": "/bin", "PIPELINE_DOTENV_KEYS": "DATA_DIR,REMOVED"}
    env = job_environment(tmp_path, started)
    assert (env["DATA_DIR"], env["ADDED"], env["PATH"]) == ("new", "yes", "/bin")
    assert "REMOVED" not in env  # deleted from .env since the start


def test_a_variable_set_explicitly_wins_over_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATA_DIR=from-dotenv\nOTHER=x\n")
    env = job_environment(tmp_path, {"DATA_DIR": "/tmp/test-data"})
    assert (env["DATA_DIR"], env["OTHER"]) == ("/tmp/test-data", "x")


def test_no_dotenv_is_the_environment(tmp_path: Path) -> None:
    assert job_environment(tmp_path, {"A": "1"}) == {"A": "1"}
