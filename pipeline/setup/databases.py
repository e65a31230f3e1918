"""Creating, seeding and dropping the two databases, as the administrator."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from psycopg import sql

from pipeline.core.connections import connect

# The database an administrator connects to for CREATE/DROP DATABASE and roles.
MAINTENANCE_DATABASE = "postgres"


def ensure_database(prefix: str, env: Mapping[str, str] = os.environ) -> bool:
    """Create the database named by ``{prefix}_DATABASE`` if missing (as the administrator); True if created."""
    name = env[f"{prefix}_DATABASE"]
    with connect(prefix, env, database=MAINTENANCE_DATABASE, autocommit=True, admin=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(prefix: str, env: Mapping[str, str] = os.environ) -> None:
    """Drop the database named by ``{prefix}_DATABASE`` (tests' throwaway databases)."""
    name = env[f"{prefix}_DATABASE"]
    with connect(prefix, env, database=MAINTENANCE_DATABASE, autocommit=True, admin=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def seed_if_empty(prefix: str, dump: Path, env: Mapping[str, str] = os.environ) -> bool:
    """Load a plain-SQL dump into the database (as the administrator) if its public schema has no table yet."""
    with connect(prefix, env, admin=True) as conn:
        has_tables = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'public' LIMIT 1"
        ).fetchone()
        if has_tables:
            return False
        conn.execute(dump.read_text(encoding="utf-8"))
        return True
