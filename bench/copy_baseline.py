r"""The physical limit of the same rows on the same machine: ``psql``'s ``\copy``, in the same run.

``psql`` is a C client, so these figures are the server's speed. Table names reach
``\copy`` quoted as SQL (``sql.Identifier``): psql parses them as SQL does. File paths
are the bench's own work folder.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql

from bench.source import source_rows
from pipeline.core.connections import ANALYTICS, SOURCE, conninfo
from pipeline.warehouse.export import export_queries


def psql(env: dict[str, str], database_prefix: str, script: str) -> float:
    """Run ``script`` with psql as the administrator; returns seconds."""
    start = time.perf_counter()
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo(database_prefix, env, admin=True)],
        input=script,
        text=True,
        check=True,
    )
    return time.perf_counter() - start


def _literal(conn: psycopg.Connection, path: Path) -> str:
    return sql.Literal(str(path)).as_string(conn)


def copy_baseline(env: dict[str, str], tables: list[str], folder: Path) -> dict[str, float]:
    """Each table out to a CSV file (COPY TO) and back into a keyed copy (COPY FROM); seconds of each half."""
    folder.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_copy CASCADE")
        conn.execute("CREATE SCHEMA bench_copy")
        for table in tables:
            name = sql.Identifier(table)
            conn.execute(sql.SQL("CREATE TABLE bench_copy.{} (LIKE public.{} INCLUDING ALL)").format(name, name))
        source = {table: sql.Identifier("public", table).as_string(conn) for table in tables}
        copy = {table: sql.Identifier("bench_copy", table).as_string(conn) for table in tables}
        files = {table: _literal(conn, folder / f"{table}.csv") for table in tables}
    out_script = "".join(
        f"\\copy (SELECT * FROM {source[table]}) TO {files[table]} (FORMAT csv, HEADER true)\n" for table in tables
    )
    in_script = "".join(f"\\copy {copy[table]} FROM {files[table]} (FORMAT csv, HEADER true)\n" for table in tables)
    out_seconds = psql(env, SOURCE, out_script)
    in_seconds = psql(env, SOURCE, in_script)
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        conn.execute("DROP SCHEMA bench_copy CASCADE")
    shutil.rmtree(folder)
    return {"rows": source_rows(env, tables), "out_seconds": out_seconds, "in_seconds": in_seconds}


def csv_copy_baseline(env: dict[str, str], scaled_csv: Path) -> dict[str, float]:
    """The CSV source COPYed into a keyed table of the declared types (Postgres parses and types each field)."""
    create = (
        "CREATE TABLE bench_csv (order_id integer NOT NULL, product_id smallint NOT NULL, "
        "unit_price real NOT NULL, quantity smallint NOT NULL, discount real NOT NULL, "
        "PRIMARY KEY (order_id, product_id));\n"
    )
    psql(env, ANALYTICS, create)
    with psycopg.connect(conninfo(ANALYTICS, env, admin=True), autocommit=True) as conn:
        source = _literal(conn, scaled_csv)
    seconds = psql(env, ANALYTICS, f"\\copy bench_csv FROM {source} (FORMAT csv, HEADER true)\n")
    with psycopg.connect(conninfo(ANALYTICS, env, admin=True), autocommit=True) as conn:
        rows = conn.execute("SELECT count(*) FROM bench_csv").fetchone()[0]
        conn.execute("DROP TABLE bench_csv")
    return {"rows": rows, "in_seconds": seconds}


def export_baseline(env: dict[str, str], day: dt.date, folder: Path) -> float:
    r"""The seconds of psql's ``\copy (<query>) TO <file>`` of the export's own two queries (``warehouse.export``)."""
    folder.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(conninfo(ANALYTICS, env, admin=True), autocommit=True) as conn:
        script = "".join(
            f"\\copy ({export.query.as_string(conn)}) TO {_literal(conn, folder / f'result{export.suffix}')} "
            f"{export.options.as_string(conn)}\n"
            for export in export_queries(day)
        )
    seconds = psql(env, ANALYTICS, script)
    shutil.rmtree(folder)
    return seconds
