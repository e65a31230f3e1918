"""One change of the analytics days' partitions at a time (publish, prune, migrate), within a lock timeout."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from pipeline.core.errors import PipelineError, TransientPipelineError, first_line

DEFAULT_LOCK_TIMEOUT = "10s"
# One publish, prune or migration at a time: they would race on creating and altering the parents.
PUBLISH_LOCK = 7_261_845_301


@contextmanager
def locks_in_time(day: dt.date, lock_timeout: str, action: str = "publish") -> Iterator[None]:
    """Turn a lock not granted within ``lock_timeout`` (or a lost server) into a transient failure."""
    try:
        yield
    except psycopg.errors.LockNotAvailable as exc:
        raise TransientPipelineError(
            f"{action} of {day}: a table was locked by another session for longer than lock_timeout "
            f"{lock_timeout} (a long query on it?); nothing changed, retry later"
        ) from exc
    except psycopg.OperationalError as exc:
        reason = first_line(exc)
        raise TransientPipelineError(f"{action} of {day}: the analytics database went away: {reason}") from exc


def guard_day_change(conn: psycopg.Connection, lock_timeout: str) -> None:
    """Begin changing a day's partitions: ``lock_timeout`` for this transaction, and its one-at-a-time lock.

    Publishes and prunes of any day alter the same parent tables, so they take turns; a
    ``lock_timeout`` that is no PostgreSQL duration is refused in one line.
    """
    try:
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (lock_timeout,))
    except psycopg.errors.InvalidParameterValue as exc:
        raise PipelineError(
            f"PIPELINE_LOCK_TIMEOUT={lock_timeout!r} is not a PostgreSQL duration; use e.g. 10s"
        ) from exc
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (PUBLISH_LOCK,))
