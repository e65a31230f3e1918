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


def state_id(environment: str, pair: str, day: str) -> str:
    """Meltano's state ID of ``pair`` (``<tap>-to-<target>``) for ``day`` (``state_id_suffix`` in meltano.yml)."""
    return f"{environment}:{pair}:{day}"


def _connect(database_uri: str) -> tuple[Any, str]:
    """A DB-API connection to Meltano's system database and its parameter placeholder."""
    if database_uri.startswith("sqlite:///"):
        return sqlite3.connect(database_uri.removeprefix("sqlite:///"), timeout=30), "?"
    if re.match(r"postgres(ql)?(\+\w+)?://", database_uri):
        return psycopg.connect(re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", database_uri)), "%s"
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
    conn, mark = _connect(database_uri)
    try:
        cursor = conn.cursor()
        marks = ", ".join([mark] * len(state_ids))
        cursor.execute(f"SELECT id, payload FROM runs WHERE state = 'RUNNING' AND job_name IN ({marks})", state_ids)
        rows = cursor.fetchall()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        for run_id, payload in rows:
            content = {**json.loads(payload or "{}"), "error": REASON}
            cursor.execute(
                f"UPDATE runs SET state = 'FAIL', ended_at = {mark}, payload = {mark} WHERE id = {mark}",
                (now.isoformat(" ") if mark == "?" else now, json.dumps(content), run_id),
            )
        conn.commit()
        return len(rows)
    finally:
        conn.close()
