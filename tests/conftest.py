"""Fixtures shared by the test suite: real Postgres databases and real Meltano runs.

Every test that touches a database gets throwaway ones on the configured server
(created, seeded from the source files that ``make setup`` obtained, and dropped),
and its own DATA_DIR, so tests never see each other's days or the user's data.
They are created by the administrator (``POSTGRES_ADMIN_*``, from ``.env.admin``) exactly
as ``make setup`` does (``pipeline.setup.provision``); the jobs then run as their own roles,
without the administrator's settings in their environment (as with ``make run``).
"""

from __future__ import annotations

import dataclasses
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pipeline.core import config
from pipeline.core.connections import ADMIN, ANALYTICS, SOURCE, connect, conninfo
from pipeline.core.dates import RETENTION_OFF
from pipeline.core.store import data_root
from pipeline.setup.databases import MAINTENANCE_DATABASE, drop_database
from pipeline.setup.provision import provision
from tests.s3server import S3Server, s3_server  # noqa: F401 (the session's S3 server, a fixture for every test)

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_env() -> dict[str, str]:
    """The project's configuration with the administrator's (see ``pipeline.core.config``).

    In a container the compose services' hosts win. Retention is off whatever ``.env``
    says: the tests run fixed past days, which a ``RETENTION_DAYS`` would refuse; the
    tests of retention set it themselves.
    """
    return {**config.project_env(PROJECT_ROOT, with_admin=True), **RETENTION_OFF}


def unfenced(*_: object) -> None:
    """The commit points' check (see ``pipeline.runs.locks.fenced``) where a test calls them holding no run lock."""


def _without_admin(env: dict[str, str]) -> dict[str, str]:
    """The environment less the administrator's settings: no job may need them (they are not in ``.env``)."""
    return {key: value for key, value in env.items() if not key.startswith(f"{ADMIN}_")}


@dataclasses.dataclass
class Pipeline:
    """One isolated pipeline: its databases, its data dir, and a way to run its jobs."""

    env: dict[str, str]
    data_dir: Path

    def run(self, *blocks: str, day: str | None, **overrides: str) -> subprocess.CompletedProcess[str]:
        """``meltano run`` in the project, for ``day`` (None: PIPELINE_DATE unset)."""
        env = {**self.env, **overrides}
        env.pop("PIPELINE_DATE", None)
        if day is not None:
            env["PIPELINE_DATE"] = day
        return self._meltano(["run", *blocks], env)

    def invoke(self, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
        """``meltano invoke pipeline <args>``: the project's own commands (prune, restore) as users run them."""
        return self._meltano(["invoke", "pipeline", *args], {**self.env, **overrides})

    def start(self, *blocks: str, day: str, **overrides: str) -> subprocess.Popen[str]:
        """``meltano run`` for ``day`` in the background, for tests that act while the job runs."""
        return subprocess.Popen(
            [str(PROJECT_ROOT / ".venv" / "bin" / "meltano"), "run", *blocks],
            cwd=PROJECT_ROOT,
            env=_without_admin({**self.env, **overrides, "PIPELINE_DATE": day}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _meltano(self, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """Meltano without the administrator's settings: no job may need them (they are not in ``.env``)."""
        return subprocess.run(
            [str(PROJECT_ROOT / ".venv" / "bin" / "meltano"), *args],
            cwd=PROJECT_ROOT,
            env=_without_admin(env),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def run_ok(self, *blocks: str, day: str) -> subprocess.CompletedProcess[str]:
        """Run and fail the test with Meltano's output if the run failed."""
        result = self.run(*blocks, day=day)
        if result.returncode != 0:
            pytest.fail(f"meltano run {' '.join(blocks)} for {day} failed:\n{result.stderr[-6000:]}")
        return result

    def connect(self, prefix: str) -> psycopg.Connection:
        """The source (``SOURCE``) or analytics (``ANALYTICS``) database as its administrator.

        Tests build fixtures (tables added or dropped at the source) that the jobs' roles
        may not write; reading through it sees everything.
        """
        return psycopg.connect(conninfo(prefix, self.env, admin=True), autocommit=True)

    def connect_as_job(self, prefix: str) -> psycopg.Connection:
        """The database as the jobs' role of ``prefix`` sees it."""
        return psycopg.connect(conninfo(prefix, self.env), autocommit=True)


@pytest.fixture(scope="session")
def base_env() -> dict[str, str]:
    """The environment the tests start from (see ``project_env``)."""
    return project_env()


@pytest.fixture(scope="session")
def source_files() -> dict[str, Path]:
    """The pinned upstream files, obtained by ``make setup``."""
    sources = config.sources_dir(PROJECT_ROOT, project_env())
    files = {name: sources / name for name in ("northwind.sql", "order_details.csv")}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        pytest.fail(f"source files missing ({', '.join(missing)}): run make setup")
    return files


def make_pipeline(
    data_dir: Path | str,
    dump: Path,
    details_csv: Path | str,
    source_encoding: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Pipeline]:
    """Throwaway databases, the source seeded from ``dump`` (plain SQL), the CSV source ``details_csv``.

    ``data_dir``: a local folder, or an ``s3://`` URL (its ``AWS_*`` settings in ``extra_env``).
    ``source_encoding``: the source database's server encoding (``LATIN1``, ``SQL_ASCII``...)
    instead of the server's default, with the C locale that any encoding accepts.
    ``extra_env``: more settings, e.g. the ``AWS_*`` of an ``s3://`` data dir.
    """
    suffix = uuid.uuid4().hex[:10]
    env = {
        **project_env(),
        "TAP_POSTGRES_DATABASE": f"test_northwind_{suffix}",
        "TARGET_POSTGRES_DATABASE": f"test_analytics_{suffix}",
        "DATA_DIR": str(data_dir),
        "ORDER_DETAILS_CSV": str(details_csv),
        **(extra_env or {}),
    }
    try:
        if source_encoding is not None:
            create_database_encoded(env["TAP_POSTGRES_DATABASE"], source_encoding, env)
        provision(dump, env)
        yield Pipeline(env=env, data_dir=data_root(str(data_dir), env))
    finally:
        for prefix in (SOURCE, ANALYTICS):
            drop_database(prefix, env)


def create_database_encoded(name: str, encoding: str, env: dict[str, str]) -> None:
    """``CREATE DATABASE`` in ``encoding``, as the administrator (template0: its encoding may differ)."""
    with connect(SOURCE, env, database=MAINTENANCE_DATABASE, autocommit=True, admin=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0").format(
                sql.Identifier(name), sql.Literal(encoding)
            )
        )


@pytest.fixture
def pipeline(tmp_path: Path, source_files: dict[str, Path]) -> Iterator[Pipeline]:
    """A fresh pipeline for one test."""
    yield from make_pipeline(tmp_path / "data", source_files["northwind.sql"], source_files["order_details.csv"])


@pytest.fixture(scope="module")
def shared_pipeline(tmp_path_factory: pytest.TempPathFactory, source_files: dict[str, Path]) -> Iterator[Pipeline]:
    """One pipeline for a whole module, whose tests build on the days it ran."""
    data_dir = tmp_path_factory.mktemp("pipeline") / "data"
    yield from make_pipeline(data_dir, source_files["northwind.sql"], source_files["order_details.csv"])


def make_s3_pipeline(server: S3Server, source_files: dict[str, Path]) -> Iterator[Pipeline]:
    """``make_pipeline`` with its DATA_DIR a prefix of its own in the test server's bucket."""
    root = data_root(server.data_dir(), server.env())
    yield from make_pipeline(
        root, source_files["northwind.sql"], source_files["order_details.csv"], extra_env=server.env()
    )


@pytest.fixture(scope="module")
def s3_shared_pipeline(s3_server: S3Server, source_files: dict[str, Path]) -> Iterator[Pipeline]:  # noqa: F811
    """``shared_pipeline`` with its DATA_DIR in the test server's bucket."""
    yield from make_s3_pipeline(s3_server, source_files)
