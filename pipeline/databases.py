"""Connections to the two databases, configured only from the environment.

The variable names are the plugins' own (``TAP_POSTGRES_*`` for the source,
``TARGET_POSTGRES_*`` for the analytics database), so one ``.env`` configures the
Meltano plugins, the project's steps and the set-up alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg import sql

from pipeline.errors import PipelineError

SOURCE = "TAP_POSTGRES"
ANALYTICS = "TARGET_POSTGRES"


def conninfo(prefix: str, env: Mapping[str, str] = os.environ, database: str | None = None) -> str:
    """A libpq connection string from ``{prefix}_HOST/PORT/USER/PASSWORD/DATABASE``."""
    missing = [f"{prefix}_{key}" for key in ("HOST", "PORT", "USER", "DATABASE") if not env.get(f"{prefix}_{key}")]
    if missing:
        raise PipelineError(f"{', '.join(missing)} not set: copy .env.example to .env (make setup does)")
    return psycopg.conninfo.make_conninfo(
        host=env[f"{prefix}_HOST"],
        port=env[f"{prefix}_PORT"],
        user=env[f"{prefix}_USER"],
        password=env.get(f"{prefix}_PASSWORD") or None,
        dbname=database or env[f"{prefix}_DATABASE"],
        application_name="northwind-pipeline",
    )


def connect(
    prefix: str, env: Mapping[str, str] = os.environ, database: str | None = None, autocommit: bool = False
) -> psycopg.Connection:
    """Connect, turning an unreachable server into a one-line error naming it."""
    name = database or env.get(f"{prefix}_DATABASE")
    try:
        return psycopg.connect(conninfo(prefix, env, database), connect_timeout=10, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise PipelineError(
            f"cannot connect to {prefix}_* database {name} at "
            f"{env[f'{prefix}_HOST']}:{env[f'{prefix}_PORT']}: {first_line}"
        ) from exc


def ensure_database(prefix: str, env: Mapping[str, str] = os.environ) -> bool:
    """Create the database named by ``{prefix}_DATABASE`` if missing; True if created."""
    name = env[f"{prefix}_DATABASE"]
    with connect(prefix, env, database="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(prefix: str, env: Mapping[str, str] = os.environ) -> None:
    """Drop the database named by ``{prefix}_DATABASE`` (tests' throwaway databases)."""
    name = env[f"{prefix}_DATABASE"]
    with connect(prefix, env, database="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def seed_if_empty(prefix: str, dump: Path, env: Mapping[str, str] = os.environ) -> bool:
    """Load a plain-SQL dump into the database if its public schema has no table yet."""
    with connect(prefix, env) as conn:
        has_tables = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'public' LIMIT 1"
        ).fetchone()
        if has_tables:
            return False
        conn.execute(dump.read_text(encoding="utf-8"))
        return True
