"""tap-postgres-native's snapshot, ended by the server (a restart mid-extract): closing it keeps the real failure.

When the source server goes away during a read, the read fails with its own transient
error; closing the snapshot afterwards must not raise in turn (a rollback on a
connection the server closed), or that second error replaces the first and the job's
failure record is lost. Run by the tap's own interpreter, on a throwaway database.
"""

from __future__ import annotations

import subprocess

import psycopg

from pipeline.core.connections import SOURCE, conninfo
from tests.plugins.conftest import installed_plugin_executable

# Opens a snapshot (no table), says so, waits for a line on stdin, then closes it.
SNAPSHOT = """
import sys
import sqlalchemy as sa
from tap_postgres_native.snapshot import SourceSnapshot
snapshot = SourceSnapshot(sa.create_engine(sys.argv[1]), {})
snapshot.begin([])
print("begun", flush=True)
sys.stdin.readline()
snapshot.close()
print("closed", flush=True)
"""


def test_a_snapshot_whose_session_the_server_ended_closes_without_raising(
    base_env: dict[str, str], throwaway_database
) -> None:
    env = base_env
    name = throwaway_database("snapshot_close")
    settings = psycopg.conninfo.conninfo_to_dict(conninfo(SOURCE, env, database=name))
    url = (
        f"postgresql+psycopg2://{settings['user']}:{settings.get('password') or ''}"
        f"@{settings['host']}:{settings['port']}/{name}"
    )
    python = installed_plugin_executable("extractors", "tap-postgres", "python")
    with subprocess.Popen(
        [str(python), "-c", SNAPSHOT, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as tap:
        assert tap.stdout.readline().strip() == "begun", tap.stderr.read()
        with psycopg.connect(conninfo(SOURCE, env, database="postgres", admin=True), autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()[0]
        assert ended == 1
        out, err = tap.communicate("\n", timeout=60)
    assert tap.returncode == 0, err[-3000:]
    assert out.strip() == "closed"
