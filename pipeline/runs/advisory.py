"""The advisory locks of runs: their keys, sessions and holders, as every lock user reads them."""

from __future__ import annotations

import datetime as dt
import hashlib

import psycopg

from pipeline.core.connections import ANALYTICS, connect
from pipeline.core.errors import TransientPipelineError
from pipeline.core.run_owner import RunOwner

RUN_APP = "pipeline-run"
WRITER_APP = "pipeline-writer"


def lock_key(kind: str, job: str, day: dt.date) -> int:
    """The advisory lock key of ``kind`` ("run" or "writer") for ``job`` and ``day``: the same on every host."""
    digest = hashlib.sha256("\0".join(("northwind-pipeline", kind, job, day.isoformat())).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def connect_lock_session(application_name: str) -> psycopg.Connection:
    """A lock session, named for ``pg_stat_activity`` (and, as every session of ours, immune to idle timeouts)."""
    try:
        conn = connect(ANALYTICS, autocommit=True)
    except TransientPipelineError as exc:
        raise TransientPipelineError(f"cannot reach the analytics database, which holds the run locks: {exc}") from exc
    conn.execute("SELECT set_config('application_name', %s, false)", (application_name,))
    return conn


def lock_holder(conn: psycopg.Connection, key: int) -> str | None:
    """The ``application_name`` of the session holding ``key`` ("" if hidden), or None if it is free."""
    row = conn.execute(
        """
        SELECT coalesce(a.application_name, '')
        FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid::int8 = %s AND l.objid::int8 = %s
        LIMIT 1
        """,
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    ).fetchone()
    return None if row is None else row[0]


def try_lock(conn: psycopg.Connection, key: int) -> bool:
    """Take the session-level advisory lock ``key`` if it is free; never wait."""
    return bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0])


def describe_holder(holder: str | None) -> str:
    """``pipeline-run <token> host:pid`` as words; the holder's own name when it is not one of ours."""
    parts = (holder or "").split(" ")
    if len(parts) == 3 and parts[0] in (RUN_APP, WRITER_APP):
        host, _, pid = parts[2].rpartition(":")
        return f"process {pid} on {host}"
    return f"session {holder!r}" if holder else "another session"


def held_by_run(holder: str | None, owner: RunOwner) -> bool:
    """Whether the lock holder named ``holder`` is of ``owner``'s run (its keeper, or the run itself by hand)."""
    parts = (holder or "").split(" ")
    return len(parts) == 3 and parts[0] in (RUN_APP, WRITER_APP) and parts[1] == owner.token


SESSION_ENDED = (
    "the session holding it in the analytics database ended (a server restart, a failover, a terminated backend)"
)
