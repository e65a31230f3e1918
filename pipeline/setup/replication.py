"""What LOG_BASED tables need of the source server, and the report of a slot no run reads.

Set up by the administrator (``make setup``, ``pipeline.setup.provision``) only when
``TAP_POSTGRES_TABLES`` reads some table ``LOG_BASED``:

- the server's ``wal_level`` must be ``logical`` (one line says what to set: it
  takes a restart, which set-up never does);
- the publication (``TAP_POSTGRES_REPLICATION_SLOT``, default ``northwind_pipeline``:
  the slot and the publication share the name) lists exactly the LOG_BASED tables,
  so the log carries nothing else; each of them must have a primary key (or a
  REPLICA IDENTITY FULL): once published, an UPDATE or DELETE of a table without a
  replica identity fails *at the source*;
- the replication role (``TAP_POSTGRES_REPLICATION_USER``) has LOGIN and REPLICATION
  and nothing else, and CONNECT on the source database: it creates and reads the
  slot (``pg_logical_slot_peek_binary_changes``, ``pg_replication_slot_advance``)
  and exports the day's snapshot, which the reader role then reads the rows in. It
  reads no table itself.

The slot itself is created by the first LOG_BASED run (tap-postgres-native's
``log_slot``), not here: a slot retains WAL from its creation on, so it is created
when something reads it.

**A slot nobody reads** keeps every WAL segment since its position, up to
``max_slot_wal_keep_size`` (unlimited by default: the disk fills); past that the
server invalidates it and LOG_BASED tables need a new first day. ``slot_report``
(``make slot-status``) says how much it holds and when a run last published a
LOG_BASED day; older than ``PIPELINE_SLOT_STALE_DAYS`` (default 2) it says so and
fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg import sql

from pipeline.core.connections import SOURCE, connect
from pipeline.core.errors import PipelineError
from pipeline.days.layout import RUNS_DIR
from pipeline.jobs import DAY_JOBS
from pipeline.setup.databases import MAINTENANCE_DATABASE
from pipeline.setup.roles import ensure_login_role
from pipeline.source.log_based import (
    LOG_BASED,
    REPLICATION,
    STALE_DAYS_VARIABLE,
    TABLES_VARIABLE,
    slot_name,
    stale_days,
    wal_level_problem,
)

STEP1_SOURCE_JOB = DAY_JOBS.running("tap-postgres")


def log_based_tables(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """The (schema, table) pairs ``TAP_POSTGRES_TABLES`` reads LOG_BASED (the tap checks the rest of it)."""
    text = env.get(TABLES_VARIABLE) or ""
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{TABLES_VARIABLE}: not JSON ({exc.msg} at character {exc.pos})") from exc
    if not isinstance(value, dict):
        raise PipelineError(f"{TABLES_VARIABLE}: expected an object of schemas, got {json.dumps(value)}")
    return sorted(
        (schema, table)
        for schema, tables in value.items()
        if isinstance(tables, dict)
        for table, options in tables.items()
        if isinstance(options, dict) and options.get("replication-method") == LOG_BASED
    )


def replication_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` whose source login is the replication role, for ``pipeline.core.connections.connect``."""
    user = env.get(f"{REPLICATION}_USER") or ""
    if not user:
        raise PipelineError(f"{REPLICATION}_USER not set: LOG_BASED tables need it (see .env.example)")
    return {**env, f"{SOURCE}_USER": user, f"{SOURCE}_PASSWORD": env.get(f"{REPLICATION}_PASSWORD") or ""}


def provision_log_based(env: Mapping[str, str] = os.environ) -> list[str]:
    """The publication, the replication role and the checks, when some table is LOG_BASED; returns what it did."""
    tables = log_based_tables(env)
    if not tables:
        return []
    name = slot_name(env)
    role = replication_env(env)[f"{SOURCE}_USER"]
    if role in (env.get(f"{SOURCE}_USER"), env.get("POSTGRES_ADMIN_USER")):
        raise PipelineError(f"{REPLICATION}_USER={role}: the replication role must be a role of its own")
    with connect(SOURCE, env, admin=True) as conn:
        where = f"the source server {env.get(f'{SOURCE}_HOST')}:{env.get(f'{SOURCE}_PORT')}"
        level = conn.execute("SELECT current_setting('wal_level')").fetchone()[0]
        if problem := wal_level_problem(level, where):
            raise PipelineError(problem)
        with conn.transaction():
            for problem in _identity_problems(conn, tables):
                raise PipelineError(problem)
            _sync_publication(conn, name, tables)
            database = sql.Identifier(conn.info.dbname)
    with connect(SOURCE, env, database=MAINTENANCE_DATABASE, admin=True) as admin:
        ensure_login_role(admin, role, env.get(f"{REPLICATION}_PASSWORD") or None, f"{REPLICATION}_USER", True)
        with admin.transaction():
            admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, sql.Identifier(role)))
    listed = ", ".join(f"{schema}.{table}" for schema, table in tables)
    return [f"log-based: publication {name} publishes {listed}; {role} reads it (REPLICATION, no table access)"]


def _identity_problems(conn: psycopg.Connection, tables: list[tuple[str, str]]) -> list[str]:
    """One line per LOG_BASED table that does not exist or has no replica identity."""
    problems = []
    for schema, table in tables:
        row = conn.execute(
            "SELECT c.relreplident, EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            (schema, table),
        ).fetchone()
        quoted = f"{schema}.{table}"
        if row is None:
            problems.append(f"{TABLES_VARIABLE} reads table {quoted} LOG_BASED, but the source has no such table")
        elif row[0] == "n" or (row[0] == "d" and not row[1]):
            problems.append(
                f"table {quoted} is LOG_BASED ({TABLES_VARIABLE}) but has no primary key: once published, its "
                f"UPDATEs and DELETEs would fail at the source; add one (or ALTER TABLE ... REPLICA IDENTITY FULL)"
            )
    return problems


def _sync_publication(conn: psycopg.Connection, name: str, tables: list[tuple[str, str]]) -> None:
    """Create the publication, or make its tables exactly ``tables`` (it is never dropped: a slot decodes by it)."""
    publication = sql.Identifier(name)
    listed = sql.SQL(", ").join(sql.Identifier(schema, table) for schema, table in tables)
    exists = conn.execute("SELECT FROM pg_publication WHERE pubname = %s", (name,)).fetchone() is not None
    verb = "ALTER PUBLICATION {} SET TABLE {}" if exists else "CREATE PUBLICATION {} FOR TABLE {}"
    conn.execute(sql.SQL(verb).format(publication, listed))


def last_published(data_dir: Path) -> dt.datetime | None:
    """When step 1 last published a day with a LOG_BASED table (its receipt's time), if ever."""
    folder = data_dir / RUNS_DIR / STEP1_SOURCE_JOB
    times = []
    for receipt in folder.glob("*.json") if folder.is_dir() else ():
        tables = json.loads(receipt.read_text(encoding="utf-8")).get("tables", {})
        if any((entry.get("replication") or {}).get("method") == LOG_BASED for entry in tables.values()):
            times.append(receipt.stat().st_mtime)
    return dt.datetime.fromtimestamp(max(times), dt.UTC) if times else None


def slot_report(env: Mapping[str, str], data_dir: Path, now: dt.datetime) -> tuple[str, bool]:
    """One line on the slot (WAL it holds, its state, the last LOG_BASED publish) and whether it is stale."""
    name = slot_name(env)
    with connect(SOURCE, replication_env(env)) as conn:
        row = conn.execute(
            "SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), wal_status, "
            "confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (name,),
        ).fetchone()
    if row is None:
        return f"slot {name}: none yet (the first LOG_BASED run creates it)", False
    held, status, position = row
    last = last_published(data_dir)
    limit = stale_days(env)
    stale = last is None or now - last > dt.timedelta(days=limit)
    since = "never" if last is None else last.strftime("%Y-%m-%d %H:%M UTC")
    line = f"slot {name}: at {position}, holds {held} of WAL (wal_status {status}); last LOG_BASED publish {since}"
    if stale:
        line += (
            f"; STALE: no run for over {limit} days ({STALE_DAYS_VARIABLE}): it keeps WAL up to "
            "max_slot_wal_keep_size; run step 1, or drop the slot if LOG_BASED is no longer used"
        )
    return line, stale
