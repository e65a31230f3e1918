"""Sling (optional): the Northwind day's tables moved to CSV files and into Postgres, for comparison.

Not a dependency of the project: the figure appears when the ``sling-linux-amd64``
wheel (Sling's Go binary inside a wheel, no console script) is installed in the venv
that runs the bench, ``pip install sling-linux-amd64==1.4.11``. The same tables as a
Northwind day: every source table to a CSV file (Sling skips empty tables), then
those files and the CSV source ``order_details`` into a throwaway schema of the
analytics database, ``bench_sling``, dropped afterwards. Two ``sling run``
processes, timed together.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from pathlib import Path

import psycopg
from psycopg import sql

from bench.memory import timed
from pipeline.databases import ADMIN, ANALYTICS, SOURCE, conninfo

SCHEMA = "bench_sling"
_SOURCE_CONN, _TARGET_CONN = "BENCH_SLING_SOURCE", "BENCH_SLING_TARGET"


def sling_binary() -> Path | None:
    """Sling's binary from the installed wheel, or None when it is not installed."""
    try:
        import sling_linux_amd64  # optional: only for this figure
    except ImportError:
        return None
    return Path(sling_linux_amd64.SLING_BIN)


def _url(prefix: str, env: dict[str, str]) -> str:
    """A Postgres URL for Sling, as the administrator (values quoted, never formatted raw)."""
    user, password = (urllib.parse.quote(env.get(f"{ADMIN}_{key}") or "", safe="") for key in ("USER", "PASSWORD"))
    host, port, name = (env[f"{prefix}_{key}"] for key in ("HOST", "PORT", "DATABASE"))
    return f"postgresql://{user}:{password}@{host}:{port}/{urllib.parse.quote(name, safe='')}?sslmode=disable"


def _write(path: Path, replication: dict[str, object]) -> Path:
    path.write_text(json.dumps(replication, indent=2))
    return path


def sling_day(env: dict[str, str], tables: list[str], details_csv: Path, work: Path) -> float | None:
    """Seconds Sling takes for the day's tables to CSV and into Postgres; None without Sling."""
    binary = sling_binary()
    if binary is None:
        return None
    folder = work / "sling"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "files").mkdir(parents=True)
    sling_env = {
        **env,
        _SOURCE_CONN: _url(SOURCE, env),
        _TARGET_CONN: _url(ANALYTICS, env),
        "SLING_HOME_DIR": str(folder / "home"),
        "SLING_DISABLE_TELEMETRY": "true",
    }
    extract = _write(
        folder / "extract.json",
        {
            "source": _SOURCE_CONN,
            "target": "LOCAL",
            "defaults": {"mode": "full-refresh"},
            "streams": {f"public.{table}": {"object": f"file://{folder / 'files' / table}.csv"} for table in tables},
        },
    )
    with psycopg.connect(conninfo(ANALYTICS, env, admin=True), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
    start = time.perf_counter()
    timed([str(binary), "run", "-r", str(extract)], sling_env, work / "logs" / "sling-extract.log")
    files = {path.stem: path for path in sorted((folder / "files").glob("*.csv"))}
    files["order_details"] = details_csv
    load = _write(
        folder / "load.json",
        {
            "source": "LOCAL",
            "target": _TARGET_CONN,
            "defaults": {"mode": "full-refresh"},
            "streams": {f"file://{path}": {"object": f"{SCHEMA}.{table}"} for table, path in files.items()},
        },
    )
    timed([str(binary), "run", "-r", str(load)], sling_env, work / "logs" / "sling-load.log")
    seconds = time.perf_counter() - start
    with psycopg.connect(conninfo(ANALYTICS, env, admin=True), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))
    shutil.rmtree(folder)
    return seconds
