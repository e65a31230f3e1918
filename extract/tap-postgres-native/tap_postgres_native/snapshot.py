"""One consistent, complete snapshot of the source for every table of a run.

Why one transaction: the tap copies table after table; a writer committing between
two copies (an order in ``orders``, then its lines in ``order_details``) would give a
day whose tables disagree. So every ``COPY`` of a run goes through one connection
holding one ``REPEATABLE READ READ ONLY`` transaction: each sees the database as it was
when the transaction took its snapshot, whatever commits meanwhile. A read-only
repeatable-read transaction never fails to serialize.

Why locks: ``TRUNCATE`` and the table rewrites of ``ALTER TABLE`` are not MVCC-safe; a
table truncated and refilled after the snapshot was taken would read as empty. So,
as pg_dump does, every table of the run is locked ``IN ACCESS SHARE MODE`` first
(which waits only for, and then holds off, ``ACCESS EXCLUSIVE``: DDL, ``TRUNCATE``,
``VACUUM FULL``), and only then is the snapshot taken, by the first statement that
needs one: the catalog is read again there, and a table dropped or changed since
discovery fails the run as worth a retry. ``SET`` and ``LOCK`` take no snapshot,
``SELECT set_config(...)`` would, so the session is set up with ``SET LOCAL`` alone.

The session: the settings that shape the text of values (a rerun writes the same bytes
whatever the server's defaults), ``client_encoding`` UTF8 (files are UTF-8 whatever the
source's encoding: the server converts, and checks the text of a SQL_ASCII database,
which it cannot convert, so a COPY of text that is not UTF-8 fails), ``row_security``
off (a table that policies would filter fails instead of coming out partial; see
``row_security_problems``), and the extractor's
``lock_timeout`` and ``statement_timeout``, so a run never waits without bound.

``PIPELINE_TEST_PAUSE_AFTER_FIRST_TABLE`` is for tests only: when set to a path, the
tap creates ``<path>.reached`` after the first table's COPY and waits (up to 5
minutes) for ``<path>`` to exist, so that a test can commit writes between the first
table and the last, deterministically. ``pipeline.core.crashpoints``' point
``source-snapshot`` pauses between discovery and the locks.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import psycopg2
import sqlalchemy as sa
from psycopg2 import sql

from pipeline.core.crashpoints import pause_point
from pipeline.core.errors import PipelineError, TransientPipelineError, first_line
from tap_postgres_native.source_catalog import SourceTable, quoted_user, read_row_security, read_tables
from tap_postgres_native.table_settings import VARIABLE as TABLES_VARIABLE
from tap_postgres_native.table_settings import leave_out_setting
from tap_postgres_native.unextractable import refuse

SESSION_SETTINGS = {
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "lc_monetary": "C",  # the text of money values
    "row_security": "off",
    # Names in values (reg* columns) schema-qualified whatever the reader's search_path.
    "search_path": "pg_catalog",
}
TEST_PAUSE_ENV = "PIPELINE_TEST_PAUSE_AFTER_FIRST_TABLE"
_PAUSE_LIMIT_SECONDS = 300


@dataclasses.dataclass(frozen=True)
class SessionLimit:
    """A server-side time limit of the extract's session, from an extractor setting."""

    parameter: str  # the PostgreSQL setting, e.g. lock_timeout
    variable: str  # where the user sets it
    default: str

    def value(self, config: Mapping[str, Any]) -> str:
        """The configured duration; an empty value (an unset variable expanded by Meltano) is the default."""
        return str(config.get(self.parameter) or self.default)


LOCK_TIMEOUT = SessionLimit("lock_timeout", "TAP_POSTGRES_LOCK_TIMEOUT", "60s")
STATEMENT_TIMEOUT = SessionLimit("statement_timeout", "TAP_POSTGRES_STATEMENT_TIMEOUT", "6h")
LIMITS = (LOCK_TIMEOUT, STATEMENT_TIMEOUT)


class SourceSnapshot:
    """The run's read-only repeatable-read transaction, holding a lock on every table it reads."""

    def __init__(self, engine: sa.Engine, config: Mapping[str, Any]) -> None:
        self._engine = engine
        self._limits = {limit.parameter: limit.value(config) for limit in LIMITS}
        self._connection: sa.Connection | None = None
        self._driver: Any = None  # the driver's (psycopg2) connection under it
        self._filtered: set[tuple[str, str]] = set()  # read with row_security on: their policies pass every row
        self._copies = 0

    def begin(self, tables: Iterable[SourceTable], export: Callable[[], str] | None = None) -> None:
        """Open the transaction, lock ``tables`` (as discovery read them), then take the snapshot and check them.

        ``export``, called once the locks are held, returns a snapshot exported by
        another session (a replication slot's, ``log_slot``), which the transaction
        then reads in instead of taking its own.

        Fails, before anything is read, on a lock not had in time or a table changed
        since discovery (both transient), or on tables that row-level security would
        filter (permanent, one line each).
        """
        tables = sorted(tables, key=lambda table: (table.schema, table.name))
        self._connection = self._engine.connect()
        self._driver = self._connection.connection.driver_connection
        self._connection.connection.detach()  # ours alone: its session never goes back to the pool
        self._driver.set_client_encoding("UTF8")
        self._driver.set_session(isolation_level="REPEATABLE READ", readonly=True)
        cursor = self._driver.cursor()
        self._set_session(cursor)
        pause_point("source-snapshot")
        for table in tables:
            self._lock(cursor, table)
        if export is not None:
            cursor.execute("SET TRANSACTION SNAPSHOT %s", (export(),))
        # The first statement that needs a snapshot: it is fixed here, after every lock.
        now = read_tables(self._connection, sorted({table.schema for table in tables}))
        for table in tables:
            if now.get((table.schema, table.name)) != table:
                raise TransientPipelineError(
                    f"table {table.quoted} was dropped or changed between the tap's discovery and its snapshot; "
                    "run the job again"
                )
        filtered = read_row_security(self._connection, [(table.schema, table.name) for table in tables])
        self._filtered = {key for key, every_row in filtered.items() if every_row}
        refuse(row_security_problems(tables, filtered, self._connection))

    def _set_session(self, cursor: Any) -> None:
        """``SET LOCAL`` every session setting: unlike ``SELECT set_config``, it takes no snapshot."""
        settings = {**SESSION_SETTINGS, **self._limits}
        statement = sql.SQL("; ").join(
            sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(name), sql.Literal(value))
            for name, value in settings.items()
        )
        try:
            cursor.execute(statement)
        except psycopg2.errors.InvalidParameterValue as exc:
            names = " or ".join(f"{limit.parameter} ({limit.variable})" for limit in LIMITS)
            raise PipelineError(
                f"tap-postgres setting {names}: {first_line(exc)}; give a duration such as 60s, 5min or 6h"
            ) from exc

    def _lock(self, cursor: Any, table: SourceTable) -> None:
        """``LOCK TABLE ... IN ACCESS SHARE MODE``: a partitioned table with its partitions, any other ``ONLY``."""
        only = sql.SQL("" if table.partitioned else "ONLY ")
        try:
            cursor.execute(
                sql.SQL("LOCK TABLE {}{} IN ACCESS SHARE MODE").format(only, sql.Identifier(table.schema, table.name))
            )
        except psycopg2.errors.LockNotAvailable as exc:
            raise TransientPipelineError(
                f"table {table.quoted}: not locked within lock_timeout {self._limits['lock_timeout']} "
                f"({LOCK_TIMEOUT.variable}): another session holds it exclusively (DDL, TRUNCATE, VACUUM FULL); "
                "run the job again when it has finished"
            ) from exc
        except psycopg2.errors.QueryCanceled as exc:
            raise TransientPipelineError(
                f"table {table.quoted}: not locked within statement_timeout {self._limits['statement_timeout']} "
                f"({STATEMENT_TIMEOUT.variable}): {first_line(exc)}; run the job again"
            ) from exc
        except psycopg2.errors.UndefinedTable as exc:
            raise TransientPipelineError(
                f"table {table.quoted} was dropped after the tap's discovery; run the job again"
            ) from exc

    @contextmanager
    def _reading(self, table: tuple[str, str]) -> Iterator[Any]:
        """A cursor of the snapshot, with ``row_security`` on while it reads a table whose policies pass every row."""
        if self._driver is None:
            raise PipelineError("the source snapshot was not begun before a read")
        cursor = self._driver.cursor()
        filtered = table in self._filtered
        if filtered:
            cursor.execute("SET LOCAL row_security = on")
        yield cursor
        if filtered:
            cursor.execute("SET LOCAL row_security = off")

    def value(self, table: tuple[str, str], statement: sql.Composed) -> Any:
        """The one value ``statement`` (a query of ``table``) returns in the snapshot: an incremental end bookmark."""
        with self._reading(table) as cursor:
            cursor.execute(statement)
            return cursor.fetchone()[0]

    def copy(self, table: tuple[str, str], statement: sql.Composed, out: IO[bytes]) -> int:
        """Run ``COPY ... TO STDOUT`` of ``table`` (schema, name) into ``out``; returns the rows copied."""
        with self._reading(table) as cursor:
            cursor.copy_expert(statement.as_string(self._driver), out, size=1 << 20)
            rows = cursor.rowcount
        self._copies += 1
        if self._copies == 1:
            _pause_for_tests()
        return rows

    def close(self) -> None:
        """End the transaction (nothing was written), which releases the locks, and close the connection.

        A connection the server already closed (a restart mid-extract) is only let go:
        a rollback would raise, and hide the failure that says why the read failed. The
        SQLAlchemy connection does not know it yet (its ``closed`` is its own state, not
        the driver's), so a rollback that the driver refuses is that case.
        """
        if self._connection is not None:
            if not self._connection.closed:
                with suppress(sa.exc.DBAPIError):
                    self._connection.rollback()
            self._connection.close()
            self._connection = self._driver = None


def row_security_problems(
    tables: list[SourceTable], filtered: Mapping[tuple[str, str], bool], connection: sa.Connection
) -> list[str]:
    """One line per table whose rows row-level security would filter for the reader, with both fixes.

    A table whose policies let every row through is read with ``row_security`` on
    (``SourceSnapshot.copy``); any other would come out partial, so it is refused.
    """
    refused = [table for table in tables if filtered.get((table.schema, table.name)) is False]
    if not refused:
        return []
    user = quoted_user(connection)
    return [
        f"table {table.quoted}: row-level security would hide rows from {user}, so the day would be partial; "
        f"let it read every row (CREATE POLICY ... ON {table.quoted} FOR SELECT TO {user} USING (true)) "
        f"or leave the table out ({TABLES_VARIABLE}: {leave_out_setting(table.schema, table.name)})"
        for table in refused
    ]


def _pause_for_tests() -> None:
    """The test-only hook described in the module docstring; does nothing unless its variable is set."""
    if not (value := os.environ.get(TEST_PAUSE_ENV)):
        return
    gate = Path(value)
    gate.with_name(gate.name + ".reached").touch()
    deadline = time.monotonic() + _PAUSE_LIMIT_SECONDS
    while not gate.exists():
        if time.monotonic() > deadline:
            raise PipelineError(f"{TEST_PAUSE_ENV}: {gate} did not appear within {_PAUSE_LIMIT_SECONDS} s")
        time.sleep(0.05)
