"""A throwaway PostgreSQL cluster of the test's own (initdb, pg_ctl), which a test may restart or reconfigure.

The shared server at ``TARGET_POSTGRES_PORT`` must never be restarted by a test:
other tests use it. A test that needs a server restart mid-run, or a server-wide
setting such as ``idle_session_timeout``, starts this one on a free port, with trust
authentication for local TCP only, and stops it when done. Postgres refuses to run
as root: as root, the cluster's folder belongs to the ``postgres`` account, which
runs its commands.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ADMIN = "postgres"
_SERVER_ACCOUNT = "postgres"


def _server_program(name: str) -> str:
    """``initdb`` or ``pg_ctl``: on PATH, else where ``pg_config`` says (Debian keeps them off PATH)."""
    if found := shutil.which(name):
        return found
    bindir = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True).stdout.strip()
    return str(Path(bindir) / name)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A cluster in a temporary folder, listening on 127.0.0.1 at ``port``."""

    def __init__(self, folder: Path, settings: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = _free_port()
        # Server settings given at every start (e.g. wal_level=logical, which only a start applies).
        self.settings = dict(settings or {})

    def _run(self, program: str, *args: str) -> None:
        prefix = ["runuser", "-u", _SERVER_ACCOUNT, "--"] if os.geteuid() == 0 else []
        command = [*prefix, _server_program(program), *args]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def _pg_ctl(self, action: str) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.folder),
            **self.settings,
        }
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w", action)

    def create(self) -> None:
        """initdb with trust authentication and the administrator ``postgres``; then start it."""
        if os.geteuid() == 0:
            account = pwd.getpwnam(_SERVER_ACCOUNT)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", ADMIN, "--auth=trust", "--no-sync", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self) -> None:
        """Stop at once (``-m fast``): sessions are ended, as on a server restart or failover."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def configure(self, setting: str, value: str | None) -> None:
        """``ALTER SYSTEM`` ``setting`` (None: back to its default) and reload: every session sees it at once."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            if value is None:
                conn.execute(psycopg.sql.SQL("ALTER SYSTEM RESET {}").format(psycopg.sql.Identifier(setting)))
            else:
                conn.execute(
                    psycopg.sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        psycopg.sql.Identifier(setting), psycopg.sql.Literal(value)
                    )
                )
            conn.execute("SELECT pg_reload_conf()")

    def conninfo(self) -> str:
        return psycopg.conninfo.make_conninfo(host="127.0.0.1", port=self.port, user=ADMIN, dbname="postgres")


@contextmanager
def throwaway_cluster(settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A fresh cluster started with ``settings`` (e.g. wal_level=logical), stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="pipeline-cluster-"))
    cluster = Cluster(folder, settings)
    try:
        cluster.create()
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
