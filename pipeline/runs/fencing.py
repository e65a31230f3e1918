"""The claims register: which run last took a job's run lock for a day, so a run that lost it cannot publish.

A session-level advisory lock ends with its session, and its holder learns it only
when it next uses that session: a server restart, a failover or a terminated
backend ends the session of a run that goes on running. Another run may then take
the lock and write the same day. So every run that takes a run lock also records
itself here, in ``pipeline.run_claims`` of the analytics database (one row per job
and day, overwritten by each claim), and every commit point reads the row
``FOR SHARE`` in its own transaction before it changes anything: a run that is no
longer the latest claimant fails instead of publishing, and a newer claim waits for
a commit point that already passed its check to finish. This is a fencing token in
the sense of Kleppmann's "How to do distributed locking": the row says who may
write, and the check and the write happen under the row's lock. The row also lists
the runs that claimed the day before, so that a run can tell that it has lost its
lock (it claimed the day once, and holds it no more) and never takes it back.
"""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg import sql

from pipeline.warehouse.bookkeeping import ensure_project_schema
from pipeline.warehouse.loads import PROJECT_SCHEMA

RUN_CLAIMS = "run_claims"

_RUN_CLAIMS_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    job text NOT NULL,
    pipeline_date date NOT NULL,
    run text NOT NULL,
    earlier_runs text[] NOT NULL DEFAULT '{{}}',
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, pipeline_date)
)
"""


def run_claims() -> sql.Composed:
    """The claims register, ``pipeline.run_claims``."""
    return sql.SQL("{}.{}").format(sql.Identifier(PROJECT_SCHEMA), sql.Identifier(RUN_CLAIMS))


def record_claim(conn: psycopg.Connection, job: str, day: dt.date, run: str) -> None:
    """Record ``run`` as the latest claimant of ``job``'s ``day``; call it right after taking the run lock.

    Waits for a commit point of the previous claimant that already passed its check.
    """
    with conn.transaction():
        ensure_project_schema(conn)
        conn.execute(sql.SQL(_RUN_CLAIMS_DDL).format(table=run_claims()))
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (job, pipeline_date, run) VALUES (%s, %s, %s) "
                "ON CONFLICT (job, pipeline_date) DO UPDATE "
                "SET run = EXCLUDED.run, earlier_runs = {}.earlier_runs || {}.run, claimed_at = now()"
            ).format(run_claims(), sql.Identifier(RUN_CLAIMS), sql.Identifier(RUN_CLAIMS)),
            (job, day, run),
        )


def _claims(conn: psycopg.Connection, job: str, day: dt.date, share: bool) -> list[str]:
    """The runs that claimed ``job``'s ``day``, latest first (none: no run did)."""
    if conn.execute("SELECT to_regclass(%s)", (f"{PROJECT_SCHEMA}.{RUN_CLAIMS}",)).fetchone()[0] is None:
        return []
    row = conn.execute(
        sql.SQL("SELECT run, earlier_runs FROM {} WHERE job = %s AND pipeline_date = %s{}").format(
            run_claims(), sql.SQL(" FOR SHARE" if share else "")
        ),
        (job, day),
    ).fetchone()
    return [] if row is None else [row[0], *reversed(row[1])]


def latest_claimant(conn: psycopg.Connection, job: str, day: dt.date) -> str | None:
    """The run that last claimed ``job``'s ``day`` (None: none did), for a commit point.

    Locks the claim until the caller's transaction ends, so no new claim happens meanwhile.
    """
    claims = _claims(conn, job, day, share=True)
    return claims[0] if claims else None


def has_claimed(conn: psycopg.Connection, job: str, day: dt.date, run: str) -> bool:
    """Whether ``run`` ever claimed ``job``'s ``day``: then finding the lock free, it has lost it."""
    return run in _claims(conn, job, day, share=False)
