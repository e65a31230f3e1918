r"""Exporting the day's result (the orders joined with their details) to CSV and JSON.

Both files come from one snapshot: a ``REPEATABLE READ READ ONLY`` transaction exports
its snapshot (``pg_export_snapshot``) to a second connection, so a publish of the same
day in between cannot make the CSV and the JSON disagree. The two are written at the
same time, the CSV on the first connection and the JSON on the second (the server does
the work of both, join, sort and ``row_to_json``, on two backends at once), each the
server's own ``COPY ... TO STDOUT`` streamed to its file (any size fits in memory).
Both files are written where no reader looks, then replace the day's result at once
(``pipeline.warehouse.results``: a folder swap on local disk, a result receipt written last on
object storage), so a reader never sees half a file nor a CSV of one run beside a
JSON of another. The rows are ordered, so the export of the same day is
byte-identical on every run.

A day without the result's tables (a source without ``orders``, or a day without the
CSV) has no result: the export is skipped with one line saying why, and any earlier
result of that day is removed.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import psycopg
from psycopg import pq, sql

from pipeline.core.crashpoints import pause_point
from pipeline.core.errors import PipelineError, first_text_line
from pipeline.warehouse.loads import DAY_COLUMN, PROJECT_SCHEMA
from pipeline.warehouse.partitions import day_partitions
from pipeline.warehouse.result_view import RESULT_TABLES, RESULT_VIEW
from pipeline.warehouse.results import ResultDraft, remove_result

_BUFFER = 1 << 20
_ORDER_BY = ("order_id", "product_id")
# COPY's csv format with a delimiter and quote that JSON text never holds unescaped (it
# escapes every control character): each row_to_json line is written exactly as it is.
_RAW_LINES = sql.SQL("(FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')")


def _day_query(day: dt.date) -> sql.Composed:
    return sql.SQL("SELECT * FROM {} WHERE {} = {} ORDER BY {}").format(
        sql.Identifier(PROJECT_SCHEMA, RESULT_VIEW),
        sql.Identifier(DAY_COLUMN),
        sql.Literal(day),
        sql.SQL(", ").join(map(sql.Identifier, _ORDER_BY)),
    )


class ExportQuery(NamedTuple):
    """One file of the export: the query whose rows it holds and the COPY options that write them."""

    suffix: str
    query: sql.Composed
    options: sql.Composable


def export_queries(day: dt.date) -> tuple[ExportQuery, ExportQuery]:
    """The CSV's and the JSON's queries, as the export runs them (the benchmark times psql on the same ones).

    The JSON query ends each row with a comma; :func:`_write_json` cuts the last one.
    """
    return (
        ExportQuery(".csv", _day_query(day), sql.SQL("(FORMAT csv, HEADER true)")),
        ExportQuery(
            ".json", sql.SQL("SELECT row_to_json(r)::text || ',' FROM ({}) AS r").format(_day_query(day)), _RAW_LINES
        ),
    )


def _copy_statement(export: ExportQuery) -> sql.Composed:
    return sql.SQL("COPY ({}) TO STDOUT {}").format(export.query, export.options)


def _copy_out(conn: psycopg.Connection, statement: sql.Composable, write: Callable[[memoryview], object]) -> int:
    """Run ``COPY ... TO STDOUT`` and ``write`` each row's bytes, straight from libpq; returns the rows.

    psycopg's ``Copy`` object costs about three times ``psql``'s CPU per row (a generator
    and a wait per row); on a small machine that CPU is taken from the server producing
    the rows. Reading with ``PQgetCopyData`` in a plain loop, as ``psql`` does, keeps the
    export as fast as psql's copy command.
    """
    pgconn = conn.pgconn
    pgconn.send_query(statement.as_bytes(conn))
    result = pgconn.get_result()
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        _finish(pgconn)
        raise PipelineError(f"export failed: {_message(result)}")
    rows = 0
    try:
        get = pgconn.get_copy_data
        while True:
            size, data = get(0)
            if size < 0:
                break
            write(data)
            rows += 1
    except BaseException:
        conn.cancel()
        while pgconn.get_copy_data(0)[0] >= 0:
            pass
        _finish(pgconn)
        raise
    if problem := _finish(pgconn):
        raise PipelineError(f"export failed: {problem}")
    return rows


def _message(result: pq.abc.PGresult | None) -> str:
    if result is None:
        return "no result"
    return first_text_line((result.error_message or b"").decode("utf-8", "replace"), str(result.status))


def _finish(pgconn: pq.abc.PGconn) -> str | None:
    """Read the results left after a COPY; the error, if the statement failed."""
    problem = None
    while (result := pgconn.get_result()) is not None:
        if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.COPY_OUT):
            problem = _message(result)
    return problem


class _HeldBack(io.RawIOBase):
    """The raw end of a ``BufferedWriter``: passes every byte on to ``out`` but the last ``hold``.

    The writer may still drop those (the JSON's last row comma): object storage cannot
    seek back and cut a file's end, so nothing is written that must be taken back. Only
    each full buffer reaches here, so the rows themselves go through C code.
    """

    def __init__(self, out: BinaryIO, hold: int) -> None:
        super().__init__()
        self.out = out
        self.hold = hold
        self.tail = b""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(data)
        if not self.hold:
            self.out.write(data)
            return size
        joined = self.tail + bytes(data)
        self.out.write(joined[: -self.hold])
        self.tail = joined[-self.hold :]
        return size


def _write_csv(conn: psycopg.Connection, export: ExportQuery, out: BinaryIO) -> None:
    with io.BufferedWriter(_HeldBack(out, 0), _BUFFER) as buffered:
        _copy_out(conn, _copy_statement(export), buffered.write)


def _write_json(conn: psycopg.Connection, export: ExportQuery, out: BinaryIO) -> int:
    """A JSON array of row objects, one per line: ``[``, rows joined by ``,`` and newlines, ``]``.

    The server ends each row with the comma; the last one is held back and dropped.
    """
    raw = _HeldBack(out, 2)
    buffered = io.BufferedWriter(raw, _BUFFER)
    buffered.write(b"[\n")
    rows = _copy_out(conn, _copy_statement(export), buffered.write)
    buffered.flush()
    out.write(b"\n]\n" if rows else b"[]\n")  # held back: the last row's ",\n", or the "[\n" of no row
    return rows


def _why_no_result(conn: psycopg.Connection, day: dt.date) -> str | None:
    """Why the day has no result (a table of the join missing that day, or no view), if so."""
    published = {(p.parent_schema, p.parent) for p in day_partitions(conn, day)}
    for schema, table in RESULT_TABLES:
        if (schema, table) not in published:
            return f"the day has no table {schema}.{table}"
    view = conn.execute("SELECT to_regclass(%s)", (f"{PROJECT_SCHEMA}.{RESULT_VIEW}",)).fetchone()
    if view is None or view[0] is None:
        return f"there is no view {PROJECT_SCHEMA}.{RESULT_VIEW} (see the publish step's output)"
    return None


@contextmanager
def _in_snapshot_of(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A second connection inside the snapshot of ``conn``'s open REPEATABLE READ transaction."""
    (snapshot,) = conn.execute("SELECT pg_export_snapshot()").fetchone() or ("",)
    info = conn.info
    with psycopg.connect(**info.get_parameters(), password=info.password) as other:
        other.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        other.read_only = True
        with other.transaction():
            other.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            yield other


def export_day(conn: psycopg.Connection, day: dt.date, data_dir: Path, check: Callable[[], None]) -> str:
    """Write ``results/{day}/orders_with_details.csv`` and ``.json``; returns the line to print.

    Where the files go until they replace the day's result, and how, is
    ``pipeline.warehouse.results``'s (a folder swap on local disk, a result receipt on object
    storage). ``check`` (that the run still holds the day: ``pipeline.runs.locks.fenced``)
    runs right before the result is replaced or removed.
    """
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    draft = ResultDraft(data_dir, day)
    with conn.transaction():
        if reason := _why_no_result(conn, day):
            remove_result(data_dir, day, check)
            return f"export {day}: skipped: {reason}, so there is no {RESULT_VIEW} result"
        draft.start()
        try:
            csv_query, json_query = export_queries(day)
            with (
                _in_snapshot_of(conn) as other,
                ThreadPoolExecutor(1) as pool,
                draft.open(f"{RESULT_VIEW}{csv_query.suffix}") as csv_out,
                draft.open(f"{RESULT_VIEW}{json_query.suffix}") as json_out,
            ):
                json_rows = pool.submit(_write_json, other, json_query, json_out)
                try:
                    _write_csv(conn, csv_query, csv_out)
                except BaseException:
                    other.cancel()
                    raise
                rows = json_rows.result()
            pause_point("export-before-swap")
        except BaseException:
            draft.discard()
            raise
    try:
        draft.commit(check, rows)
    except BaseException:
        draft.discard()
        raise
    return f"export {day}: {rows} rows to {draft.target}/{RESULT_VIEW}.csv and .json"
