"""Exporting the day's result (the orders joined with their details) to CSV and JSON.

Both files are streamed from the database (any size fits in memory) into temporary
names and renamed into place, so a reader never sees half a file. The rows are
ordered, so the export of the same day is byte-identical on every run.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from pipeline.analytics import RESULT_VIEW
from pipeline.crashpoints import pause_point
from pipeline.errors import PipelineError
from pipeline.staging import DAY_COLUMN, FINAL_SCHEMA

RESULTS_DIR = "results"
_ORDER_BY = "order_id, product_id"


def _day_query(day: dt.date) -> sql.Composed:
    return sql.SQL("SELECT * FROM {}.{} WHERE {} = {} ORDER BY {}").format(
        sql.Identifier(FINAL_SCHEMA),
        sql.Identifier(RESULT_VIEW),
        sql.Identifier(DAY_COLUMN),
        sql.Literal(day),
        sql.SQL(_ORDER_BY),
    )


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def _write_csv(conn: psycopg.Connection, day: dt.date, path: Path) -> None:
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true)").format(_day_query(day))
    tmp = _temporary(path)
    with tmp.open("wb") as out, conn.cursor().copy(statement) as copy:
        for block in copy:
            out.write(block)
    os.replace(tmp, path)


def _write_json(conn: psycopg.Connection, day: dt.date, path: Path) -> int:
    """Write a JSON array of row objects, one per line, with Postgres's own JSON rendering."""
    statement = sql.SQL("SELECT row_to_json(r)::text FROM ({}) AS r").format(_day_query(day))
    tmp = _temporary(path)
    rows = 0
    with tmp.open("w", encoding="utf-8") as out, conn.cursor(name="export_json") as cursor:
        cursor.itersize = 10_000
        cursor.execute(statement)
        out.write("[")
        for (line,) in cursor:
            out.write(",\n" if rows else "\n")
            out.write(line)
            rows += 1
        out.write("\n]\n" if rows else "]\n")
    os.replace(tmp, path)
    return rows


def export_day(conn: psycopg.Connection, day: dt.date, data_dir: Path) -> tuple[Path, Path, int]:
    """Write ``results/{day}/orders_with_details.csv`` and ``.json``; returns both and the row count."""
    exists = conn.execute("SELECT to_regclass(%s)", (f"{FINAL_SCHEMA}.{RESULT_VIEW}",)).fetchone()
    if exists is None or exists[0] is None:
        raise PipelineError(f"the analytics database has no view {RESULT_VIEW}: load a day with orders first")
    folder = data_dir / RESULTS_DIR / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = folder / f"{RESULT_VIEW}.csv", folder / f"{RESULT_VIEW}.json"
    with conn.transaction():
        _write_csv(conn, day, csv_path)
        pause_point("export-between")
        rows = _write_json(conn, day, json_path)
    return csv_path, json_path, rows
