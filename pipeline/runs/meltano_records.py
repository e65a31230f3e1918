"""Meltano's records of killed runs, failed at once so that they never block a rerun.

Meltano 4.4.1 refuses to start a job while its system database records a run of
the same state ID as running ("Another '...' pipeline is already running ... Wait
until ..."), until that record's heartbeat is five minutes old. A run killed with
``kill -9`` (an OOM kill, a lost worker) leaves exactly such a record, so for five
minutes every rerun of that job and day, Airflow's retry included, would be
refused. Meltano's only switches for this are command-line ones (``--force``, env
``MELTANO_RUN_FORCE``); nothing in ``meltano.yml`` turns the check off, and the
documented command is the plain ``meltano run <job>``.

So each job starts with ``pipeline claim``: it takes the job's run lock for the day
(``pipeline.runs.locks``), which no live run of that job and day can hold at the same
time on any host, and then marks failed, as Meltano itself marks a stale one, every
record of that job and day still marked running, before Meltano reaches its check.
One exception: a run whose lock ended with its session (a server restart) lives on
until its next commit point fails it. Its record's heartbeat, which Meltano writes
every second, still advances: ``claim`` watches each record for ``WATCH_SECONDS``
and, if one beats, leaves it alone and refuses (transient) instead of failing the
record of a live run; the newcomer's claim already makes that run fail before it
publishes, and Meltano records its end itself.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from typing import Any

import psycopg

from pipeline.core.errors import PipelineError, TransientPipelineError, first_line

DATABASE_URI_ENV = "MELTANO_DATABASE_URI"
ENVIRONMENT_ENV = "MELTANO_ENVIRONMENT"
REASON = "The run's processes died (killed); failed by `pipeline claim` of the next run, which holds the run lock."
# Meltano writes a running record's heartbeat every second: unchanged this long, its run is dead.
WATCH_SECONDS = 3.0
_WATCH_POLL_SECONDS = 0.25


def state_id(environment: str, pair: str, day: dt.date) -> str:
    """Meltano's state ID of ``pair`` (``<tap>-to-<target>``) for ``day`` (``state_id_suffix`` in meltano.yml)."""
    return f"{environment}:{pair}:{day.isoformat()}"


# The statements in each driver's parameter style: sqlite3 ("?") and psycopg ("%s").
_SQLITE = (
    "SELECT id, payload, last_heartbeat_at FROM runs WHERE state = 'RUNNING' AND job_name = ?",
    "UPDATE runs SET state = 'FAIL', ended_at = ?, payload = ? WHERE id = ?",
)
_POSTGRES = (
    "SELECT id, payload, last_heartbeat_at FROM runs WHERE state = 'RUNNING' AND job_name = %s",
    "UPDATE runs SET state = 'FAIL', ended_at = %s, payload = %s WHERE id = %s",
)


def _connect(database_uri: str) -> tuple[Any, tuple[str, str]]:
    """A DB-API connection to Meltano's system database, and the statements in its parameter style."""
    if database_uri.startswith("sqlite:///"):
        return sqlite3.connect(database_uri.removeprefix("sqlite:///"), timeout=30), _SQLITE
    if re.match(r"postgres(ql)?(\+\w+)?://", database_uri):
        return psycopg.connect(re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", database_uri)), _POSTGRES
    scheme = database_uri.split(":", 1)[0]
    raise PipelineError(f"{DATABASE_URI_ENV} uses {scheme}; pipeline claim supports sqlite and postgresql only")


def fail_running_records(database_uri: str, state_ids: list[str], rerun: str) -> int:
    """Mark every run of ``state_ids`` recorded as running, and dead, as failed; returns how many there were.

    Only call it while holding the run lock of those state IDs' job and day. A record
    whose heartbeat still advances is refused (transient), naming the ``rerun`` command.
    """
    try:
        return _fail(database_uri, state_ids, rerun)
    except (sqlite3.Error, psycopg.Error) as exc:
        raise TransientPipelineError(
            f"cannot update Meltano's system database ({DATABASE_URI_ENV}): {first_line(exc)}"
        ) from exc


def _running(cursor: Any, select: str, state_ids: list[str]) -> dict[Any, tuple[Any, Any, str]]:
    """Each running record's id -> (payload, heartbeat, state ID)."""
    found = {}
    for name in state_ids:
        cursor.execute(select, (name,))
        found.update({run_id: (payload, heartbeat, name) for run_id, payload, heartbeat in cursor.fetchall()})
    return found


def _dead_records(conn: Any, select: str, state_ids: list[str], rerun: str) -> dict[Any, tuple[Any, Any, str]]:
    """The running records whose heartbeat stays still for ``WATCH_SECONDS``; refuses if one beats."""
    cursor = conn.cursor()
    seen = _running(cursor, select, state_ids)
    deadline = time.monotonic() + WATCH_SECONDS
    while seen and time.monotonic() < deadline:
        time.sleep(_WATCH_POLL_SECONDS)
        conn.commit()  # a fresh snapshot of Meltano's writes
        now = _running(cursor, select, state_ids)
        beats = {now[run_id][2] for run_id in now.keys() & seen.keys() if now[run_id][1] != seen[run_id][1]}
        if beating := sorted(beats):
            raise TransientPipelineError(
                f"refused: a run of {', '.join(beating)} is still alive (its heartbeat in Meltano's system database "
                "advances) though it lost the run lock; it fails before publishing anything; "
                f"retry when it has ended: {rerun}"
            )
        seen = {run_id: row for run_id, row in seen.items() if run_id in now}  # ended meanwhile: not ours to fail
    return seen


def _fail(database_uri: str, state_ids: list[str], rerun: str) -> int:
    conn, (select, update) = _connect(database_uri)
    try:
        dead = _dead_records(conn, select, state_ids, rerun)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        ended_at = now.isoformat(" ") if select is _SQLITE[0] else now  # sqlite3 stores Meltano's text form
        cursor = conn.cursor()
        for run_id, (payload, _, _) in dead.items():
            content = payload if isinstance(payload, dict) else json.loads(payload or "{}")
            cursor.execute(update, (ended_at, json.dumps({**content, "error": REASON}), run_id))
        conn.commit()
        return len(dead)
    finally:
        conn.close()
