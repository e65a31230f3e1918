"""Meltano's system database in Postgres (MELTANO_DATABASE_URI, as docker-compose.yml sets it).

The set-up creates the database of that URL when missing, so that every worker of a
Celery deployment finds the same run records; Meltano then creates its tables.
"""

from __future__ import annotations

import subprocess
import uuid

import psycopg
import pytest

from pipeline.databases import ADMIN, SOURCE, conninfo, drop_database, ensure_database_at
from pipeline.errors import PipelineError
from tests.conftest import PROJECT_ROOT


def test_set_up_creates_meltanos_database_and_meltano_uses_it(base_env: dict[str, str]) -> None:
    name = f"test_meltano_{uuid.uuid4().hex[:10]}"
    user, password = base_env[f"{ADMIN}_USER"], base_env.get(f"{ADMIN}_PASSWORD", "")
    host, port = base_env[f"{SOURCE}_HOST"], base_env[f"{SOURCE}_PORT"]
    url = f"postgresql+psycopg://{user}:{password}@{host}:{port}/{name}"
    try:
        assert ensure_database_at(url) is True
        assert ensure_database_at(url) is False
        listed = subprocess.run(
            [str(PROJECT_ROOT / ".venv" / "bin" / "meltano"), "--no-environment", "state", "list"],
            cwd=PROJECT_ROOT,
            env={**base_env, "MELTANO_DATABASE_URI": url},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr[-3000:]
        with psycopg.connect(conninfo(SOURCE, base_env, database=name, admin=True)) as conn:
            tables = {t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"runs", "state"} <= tables
    finally:
        drop_database(SOURCE, {**base_env, f"{SOURCE}_DATABASE": name})


def test_a_url_that_is_not_postgres_is_refused_in_one_line() -> None:
    with pytest.raises(PipelineError, match="is not a postgresql:// URL"):
        ensure_database_at("sqlite:////var/lib/meltano/meltano.db")
