"""One consistent snapshot of the source for every table of a run.

Why: the tap copies table after table; a writer committing between two copies
(an order in ``orders``, then its lines in ``order_details``) would give a day whose
tables disagree. So every ``COPY`` of a run goes through one connection holding one
``REPEATABLE READ READ ONLY`` transaction: each sees the database as it was at the
transaction's first statement, whatever commits meanwhile. PostgreSQL 9.1 and later
have it, and a read-only repeatable-read transaction never fails to serialize.

The session settings that shape the text of values are pinned in the same
transaction (``SET LOCAL``), so a rerun writes the same bytes whatever the server's
defaults.

``PIPELINE_TEST_PAUSE_AFTER_FIRST_TABLE`` is for tests only: when set to a path, the
tap creates ``<path>.reached`` after the first table's COPY and waits (up to 5
minutes) for ``<path>`` to exist, so that a test can commit writes between the first
table and the last, deterministically.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from pipeline.errors import PipelineError

SESSION_SETTINGS = {
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "lc_monetary": "C",  # the text of money values
}
TEST_PAUSE_ENV = "PIPELINE_TEST_PAUSE_AFTER_FIRST_TABLE"
_PAUSE_LIMIT_SECONDS = 300


class SourceSnapshot:
    """A lazily opened read-only repeatable-read transaction that every COPY of the run shares."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._connection: Any = None  # the driver's (psycopg2) connection
        self._copies = 0

    def _cursor(self) -> Any:
        if self._connection is None:
            pooled = self._engine.raw_connection()
            connection = pooled.driver_connection
            pooled.detach()  # it is ours alone: its session settings never go back to the pool
            connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
            cursor = connection.cursor()
            # The first statement fixes the snapshot.
            for name, value in SESSION_SETTINGS.items():
                cursor.execute("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))
            self._connection = connection
            return cursor
        return self._connection.cursor()

    def copy(self, statement: Any, out: IO[bytes]) -> int:
        """Run ``COPY ... TO STDOUT`` (a ``psycopg2.sql`` statement) into ``out``; returns the rows copied."""
        cursor = self._cursor()
        cursor.copy_expert(statement.as_string(self._connection), out, size=1 << 20)
        self._copies += 1
        if self._copies == 1:
            _pause_for_tests()
        return cursor.rowcount

    def close(self) -> None:
        """End the transaction (nothing was written) and give the connection back.

        A connection the server already closed (a restart mid-extract) is only let go:
        a rollback would raise, and hide the failure that says why the read failed.
        """
        if self._connection is not None:
            if not self._connection.closed:
                self._connection.rollback()
            self._connection.close()
            self._connection = None


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
