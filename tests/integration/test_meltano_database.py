"""Meltano's system database in Postgres (MELTANO_DATABASE_URI, as docker-compose.yml sets it).

The set-up creates the database of that URL when missing, owned by the URL's own role
(created too, no superuser), so that every worker of a Celery deployment finds the
same run records; Meltano then creates its tables as that role.
"""

from __future__ import annotations

import secrets
import subprocess
import uuid

import psycopg
from psycopg import sql

from pipeline.core.connections import ANALYTICS, conninfo
from pipeline.setup.databases import MAINTENANCE_DATABASE
from pipeline.setup.service_databases import ensure_service_database
from tests.conftest import PROJECT_ROOT

SETTING = "MELTANO_DATABASE_URI"


def test_set_up_creates_meltanos_database_for_its_own_role_and_meltano_uses_it(base_env: dict[str, str]) -> None:
    name = f"test_meltano_{uuid.uuid4().hex[:10]}"
    host, port = base_env[f"{ANALYTICS}_HOST"], base_env[f"{ANALYTICS}_PORT"]
    url = f"postgresql+psycopg://{name}:{secrets.token_hex(8)}@{host}:{port}/{name}"
    env = {**base_env, SETTING: url}
    admin = conninfo(ANALYTICS, base_env, database=MAINTENANCE_DATABASE, admin=True)
    try:
        assert (
            ensure_service_database(SETTING, env)
            == f"{SETTING}: database {name} on {host} created, owned by {name} alone"
        )
        assert ensure_service_database(SETTING, env).endswith("exists, owned by " + name + " alone")
        listed = subprocess.run(
            [str(PROJECT_ROOT / ".venv" / "bin" / "meltano"), "--no-environment", "state", "list"],
            cwd=PROJECT_ROOT,
            env={**base_env, SETTING: url},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr[-3000:]
        with psycopg.connect(conninfo(ANALYTICS, base_env, database=name, admin=True)) as conn:
            owners = dict(conn.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"))
        assert owners["runs"] == owners["state"] == name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
