"""The challenge's reference path, stock: MeltanoLabs tap-postgres -> RECORD messages -> target-csv / target-postgres.

As shipped (no batch size, no COPY, validation on), each plugin from its own venv
(:mod:`bench.peer_venvs`) and started directly, without Meltano, so the figure is
the plugins' own. The path moves a few thousand rows a second, so it runs on a
capped copy of the scaled CSV table: ``bench_stock_capped``, the first ``cap`` rows
of ``bench_order_details`` with the same key, in the source database.

- extract: ``tap-postgres | tee <messages> | target-csv``, the capped table to a CSV
  file through RECORD messages (``tee``, a C program, keeps the messages);
- load: those messages into ``target-postgres`` (the reference's second leg reads the
  CSV with a CSV tap, not on PyPI: the tap's own messages stand in for its output,
  which leaves the CSV tap's cost out, in the peer's favour).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.memory import timed_pipeline
from bench.peer_io import hop
from bench.peer_venvs import peer_venv
from bench.source import BIG_TABLE
from pipeline.core.connections import ADMIN, ANALYTICS, SOURCE, conninfo

PEER = "stock"
CAPPED_TABLE = "bench_stock_capped"
STREAM = f"public-{CAPPED_TABLE}"  # tap-postgres's stream id: <schema>-<table>
TARGET_SCHEMA = "bench_stock"


def _executable(venv: str, name: str) -> str:
    return str(peer_venv(venv) / "bin" / name)


def _connection(prefix: str, env: dict[str, str]) -> dict[str, Any]:
    """A plugin's connection settings, as the administrator (both plugins want a password, any under trust)."""
    return {
        "host": env[f"{prefix}_HOST"],
        "port": int(env[f"{prefix}_PORT"]),
        "user": env.get(f"{ADMIN}_USER") or "postgres",
        "password": env.get(f"{ADMIN}_PASSWORD") or "unused",
        "database": env[f"{prefix}_DATABASE"],
    }


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2))
    return path


def capped_copy(env: dict[str, str], cap: int) -> int:
    """Make ``bench_stock_capped`` (``cap`` rows of the scaled table, keyed); returns its rows."""
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        capped, big = sql.Identifier(CAPPED_TABLE), sql.Identifier(BIG_TABLE)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(capped))
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(capped, big))
        conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {} ORDER BY 1, 2 LIMIT %s").format(capped, big), (cap,))
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(capped)).fetchone()[0]


def _catalog(tap: str, config: Path, folder: Path) -> Path:
    """tap-postgres's discovered catalog with only the capped table selected."""
    found = subprocess.run([tap, "--config", str(config), "--discover"], capture_output=True, text=True, check=False)
    if found.returncode != 0:
        sys.exit(f"bench: tap-postgres --discover failed: {found.stderr.strip().splitlines()[-1:]}")
    catalog = json.loads(found.stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == STREAM
    return _write(folder / "catalog.json", catalog)


def _loaded_rows(env: dict[str, str]) -> int:
    """Rows target-postgres wrote into its default schema (it names the table after the stream's table)."""
    with psycopg.connect(conninfo(ANALYTICS, env, admin=True), autocommit=True) as conn:
        table = sql.Identifier(TARGET_SCHEMA, CAPPED_TABLE)
        if not conn.execute("SELECT to_regclass(%s)", (table.as_string(conn),)).fetchone()[0]:
            sys.exit(f"bench: target-postgres wrote no table {TARGET_SCHEMA}.{CAPPED_TABLE}; see the stock load's log")
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]


def drop_tables(env: dict[str, str]) -> None:
    """Drop what the stock path made in both databases."""
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(CAPPED_TABLE)))
    with psycopg.connect(conninfo(ANALYTICS, env, admin=True), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(TARGET_SCHEMA)))


def stock_hops(env: dict[str, str], cap: int, folder: Path, logs: Path) -> list[dict[str, Any]]:
    """Both hops of the stock path on ``cap`` rows: ``[extract, load]`` figures."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "csv").mkdir(parents=True)
    rows = capped_copy(env, cap)
    tap = _executable("stock-tap-postgres", "tap-postgres")
    tap_config = _write(folder / "tap.json", {**_connection(SOURCE, env), "filter_schemas": ["public"]})
    catalog = _catalog(tap, tap_config, folder)
    csv_config = _write(folder / "target-csv.json", {"output_path": str(folder / "csv")})
    pg_config = _write(
        folder / "target-postgres.json", {**_connection(ANALYTICS, env), "default_target_schema": TARGET_SCHEMA}
    )
    messages = folder / "messages.jsonl"
    extract = timed_pipeline(
        [
            [tap, "--config", str(tap_config), "--catalog", str(catalog)],
            ["tee", str(messages)],
            [_executable("stock-target-csv", "target-csv"), "--config", str(csv_config)],
        ],
        env,
        logs / "stock-extract.log",
    )
    load = timed_pipeline(
        [[_executable("stock-target-postgres", "target-postgres"), "--config", str(pg_config)]],
        env,
        logs / "stock-load.log",
        stdin=messages,
    )
    loaded = _loaded_rows(env)
    if loaded != rows:
        sys.exit(f"bench: the stock path loaded {loaded} rows of {CAPPED_TABLE}'s {rows}; see {logs}")
    shutil.rmtree(folder)
    return [
        hop(PEER, "extract", rows, extract),
        hop(PEER, "load", rows, load),
    ]
