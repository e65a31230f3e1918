"""Fixtures shared by the plugin tests: the installed plugin executables and throwaway databases."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pipeline.core.connections import SOURCE, conninfo
from pipeline.setup.roles import grant_source_reader
from tests.conftest import project_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def write_tap_config(path: Path, database: str, **settings: Any) -> Path:
    """A tap-postgres-native config at ``path`` that reads ``database``'s schema public, with more ``settings``."""
    env = project_env()
    config = {
        "host": env["TAP_POSTGRES_HOST"],
        "port": int(env["TAP_POSTGRES_PORT"]),
        "user": env["TAP_POSTGRES_USER"],
        "password": env["TAP_POSTGRES_PASSWORD"],
        "database": database,
        "filter_schemas": ["public"],
        **settings,
    }
    path.write_text(json.dumps(config))
    return path


def installed_plugin_executable(plugin_type: str, plugin: str, executable: str) -> Path:
    """Return a plugin's executable as `make setup` (meltano install) puts it, or fail the test."""
    path = PROJECT_ROOT / ".meltano" / plugin_type / plugin / "venv" / "bin" / executable
    if not path.is_file():
        pytest.fail(f"{path} is missing: run make setup")
    return path


@pytest.fixture(scope="session")
def tap_postgres_native_exe() -> Path:
    return installed_plugin_executable("extractors", "tap-postgres", "tap-postgres-native")


@pytest.fixture(scope="session")
def target_lfs_exe() -> Path:
    return installed_plugin_executable("loaders", "target-lfs", "target-lfs")


@pytest.fixture(scope="session")
def tap_typed_csv() -> Path:
    return installed_plugin_executable("extractors", "tap-order-details", "tap-typed-csv")


@pytest.fixture(scope="module")
def throwaway_database(base_env: dict[str, str]) -> Iterator[Callable[[str], str]]:
    """Create databases with unique names on demand (``make(prefix) -> name``); drop them at teardown.

    Made by the administrator; the source's reader role may read what the administrator
    creates in them afterwards, so the tap runs as it does in the jobs.
    """
    created: list[str] = []
    server = conninfo(SOURCE, base_env, database="postgres", admin=True)

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        grant_source_reader({**base_env, f"{SOURCE}_DATABASE": name})
        return name

    yield make
    with psycopg.connect(server, autocommit=True) as conn:
        for name in created:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
