"""dlt 1.31 (pyarrow backend): tables to CSV files, CSV files into keyed tables, each hop one process.

The hops run in the dlt peer's own venv (:mod:`bench.peer_venvs`) as
``bench/dlt_script.py``, which says what each does; this side writes its arguments,
times it and finds its files. The load's tables land in the throwaway schema
``bench_dlt`` of the analytics database (dlt's dataset), dropped by :func:`drop_schema`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
from psycopg import sql

from bench.memory import Timing, timed
from bench.peer_io import admin_url
from bench.peer_venvs import peer_venv
from pipeline.core.connections import ANALYTICS, SOURCE, conninfo

PEER = "dlt"
SCHEMA = "bench_dlt"
SCRIPT = Path(__file__).with_name("dlt_script.py")
# Read by dlt_script.py (it cannot import the bench: it runs in dlt's venv).
SOURCE_URL_ENV, TARGET_URL_ENV = "BENCH_DLT_SOURCE_URL", "BENCH_DLT_TARGET_URL"
EXTRACT_DATASET = "extract"  # dlt's folder under the extract's bucket: <folder>/extract/<table>/*.csv


def _run(env: dict[str, str], arguments: dict[str, object], log: Path) -> Timing:
    """The script with its arguments; the URLs, which carry the password, only in its environment."""
    python = peer_venv(PEER) / "bin" / "python"
    urls = {
        SOURCE_URL_ENV: admin_url(SOURCE, env, scheme="postgresql+psycopg2"),
        TARGET_URL_ENV: admin_url(ANALYTICS, env),
    }
    return timed([str(python), str(SCRIPT), json.dumps(arguments)], {**env, **urls}, log)


def extract(env: dict[str, str], tables: list[str], folder: Path, log: Path) -> tuple[dict[str, list[Path]], Timing]:
    """The tables to CSV files under ``folder``; the files by table, and the timing."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    arguments = {
        "hop": "extract",
        "tables": tables,
        "folder": str(folder / "files"),
        "work": str(folder / "work"),
    }
    timing = _run(env, arguments, log)
    written = folder / "files" / EXTRACT_DATASET
    files = {table: sorted((written / table).glob("*.csv")) for table in tables if (written / table).is_dir()}
    return files, timing


def load(
    env: dict[str, str], files: dict[str, list[Path]], keys: dict[str, list[str]], folder: Path, log: Path
) -> Timing:
    """CSV files into keyed tables of ``bench_dlt`` (replaced)."""
    arguments = {
        "hop": "load",
        "schema": SCHEMA,
        "files": {table: [str(path) for path in paths] for table, paths in files.items()},
        "keys": keys,
        "work": str(folder / "work"),
    }
    return _run(env, arguments, log)


def drop_schema(env: dict[str, str]) -> None:
    """Drop what :func:`load` made (dlt also keeps its own state tables there)."""
    with psycopg.connect(conninfo(ANALYTICS, env, admin=True), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
