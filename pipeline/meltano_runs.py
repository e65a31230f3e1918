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
(``pipeline.locks``), which no live run of that job and day can hold at the same
time on any host. Every record of that job and day still marked running therefore
belongs to a dead run, and ``claim`` marks it failed, as Meltano itself marks a
stale one, before Meltano reaches its check.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from typing import Any

import psycopg

from pipeline.errors import PipelineError, TransientPipelineError

DATABASE_URI_ENV = "MELTANO_DATABASE_URI"
ENVIRONMENT_ENV = "MELTANO_ENVIRONMENT"
REASON = "The run's processes died (killed); failed by `pipeline claim` of the next run, which holds the run lock."


def state_id(environment: str, pair: str, day: dt.date) -> str:
    """Meltano's state ID of ``pair`` (``<tap>-to-<target>``) for ``day`` (``state_id_suffix`` in meltano.yml)."""
    return f"{environment}:{pair}:{day.isoformat()}"


# The statements in each driver's parameter style: sqlite3 ("?") and psycopg ("%s").
_SQLITE = (
    "SELECT id, payload FROM runs WHERE state = 'RUNNING' AND job_name = ?",
    "UPDATE runs SET state = 'FAIL', ended_at = ?, payload = ? WHERE id = ?",
)
_POSTGRES = (
    "SELECT id, payload FROM runs WHERE state = 'RUNNING' AND job_name = %s",
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


def fail_running_records(database_uri: str, state_ids: list[str]) -> int:
    """Mark every run of ``state_ids`` recorded as running as failed; returns how many there were.

    Only call it while holding the run lock of those state IDs' job and day.
    """
    try:
        return _fail(database_uri, state_ids)
    except (sqlite3.Error, psycopg.Error) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TransientPipelineError(f"cannot update Meltano's system database ({DATABASE_URI_ENV}): {reason}") from exc


def _fail(database_uri: str, state_ids: list[str]) -> int:
    conn, (select, update) = _connect(database_uri)
    try:
        cursor = conn.cursor()
        rows = []
        for name in state_ids:
            cursor.execute(select, (name,))
            rows += cursor.fetchall()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        ended_at = now.isoformat(" ") if select is _SQLITE[0] else now  # sqlite3 stores Meltano's text form
        for run_id, payload in rows:
            content = payload if isinstance(payload, dict) else json.loads(payload or "{}")
            cursor.execute(update, (ended_at, json.dumps({**content, "error": REASON}), run_id))
        conn.commit()
        return len(rows)
    finally:
        conn.close()
