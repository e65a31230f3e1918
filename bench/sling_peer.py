"""Sling (the ``sling-linux-amd64`` wheel, its Go binary inside): tables to CSV files, CSV files into keyed tables.

Sling runs from its own venv (:mod:`bench.peer_venvs`); the wheel has no console
script, so the binary is found through the package's ``SLING_BIN``. Each hop is one
``sling run`` of a replication file: ``extract`` writes every given source table to
a CSV file (Sling skips empty tables, so they get no file), ``load`` reads CSV files
into tables of the throwaway schema ``bench_sling`` of the analytics database, with
each table's primary key declared; the schema is dropped by :func:`drop_schema`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from bench.memory import Timing, timed
from bench.peer_io import admin_url
from bench.peer_venvs import peer_venv
from pipeline.core.connections import ANALYTICS, SOURCE, conninfo

PEER = "sling"
SCHEMA = "bench_sling"
_SOURCE_CONN, _TARGET_CONN = "BENCH_SLING_SOURCE", "BENCH_SLING_TARGET"


def sling_binary() -> Path:
    """Sling's binary, from the peer venv's package (installed on first use)."""
    python = peer_venv(PEER) / "bin" / "python"
    found = subprocess.run(
        [str(python), "-c", "import sling_linux_amd64; print(sling_linux_amd64.SLING_BIN)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        sys.exit(f"bench: the sling peer's venv has no sling_linux_amd64.SLING_BIN: {found.stderr.strip()[-300:]}")
    return Path(found.stdout.strip())


def _env(env: dict[str, str], home: Path) -> dict[str, str]:
    return {
        **env,
        _SOURCE_CONN: admin_url(SOURCE, env),
        _TARGET_CONN: admin_url(ANALYTICS, env),
        "SLING_HOME_DIR": str(home),
        "SLING_DISABLE_TELEMETRY": "true",
    }


def _run(env: dict[str, str], replication: dict[str, object], folder: Path, log: Path) -> Timing:
    """One ``sling run`` of ``replication``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{log.stem}.json"
    path.write_text(json.dumps(replication, indent=2))
    return timed([str(sling_binary()), "run", "-r", str(path)], _env(env, folder / "home"), log)


def extract(env: dict[str, str], tables: list[str], folder: Path, log: Path) -> tuple[dict[str, list[Path]], Timing]:
    """The tables to ``folder/<table>.csv``; the files by table, and the timing."""
    replication = {
        "source": _SOURCE_CONN,
        "target": "LOCAL",
        "defaults": {"mode": "full-refresh"},
        "streams": {f"public.{table}": {"object": f"file://{folder / table}.csv"} for table in tables},
    }
    timing = _run(env, replication, folder, log)
    return {path.stem: [path] for path in sorted(folder.glob("*.csv"))}, timing


def load(
    env: dict[str, str], files: dict[str, list[Path]], keys: dict[str, list[str]], folder: Path, log: Path
) -> Timing:
    """CSV files into keyed tables of ``bench_sling`` (made afresh), Sling's state in ``folder``."""
    with psycopg.connect(conninfo(ANALYTICS, env, admin=True), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
    streams = {
        f"file://{path}": {"object": f"{SCHEMA}.{table}", **({"primary_key": keys[table]} if keys.get(table) else {})}
        for table, paths in files.items()
        for path in paths  # one file a table: Sling's extract writes one, and the CSV source is one
    }
    replication = {"source": "LOCAL", "target": _TARGET_CONN, "defaults": {"mode": "full-refresh"}, "streams": streams}
    return _run(env, replication, folder, log)


def drop_schema(env: dict[str, str]) -> None:
    """Drop what :func:`load` made."""
    with psycopg.connect(conninfo(ANALYTICS, env, admin=True), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
