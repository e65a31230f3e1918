"""Least privilege: the jobs' roles can do their work and nothing more (pipeline.roles).

The databases are made by the administrator as ``make setup`` makes them; each
check connects as a job's role and expects PostgreSQL itself to refuse.
"""

from __future__ import annotations

import psycopg
import pytest

from pipeline.databases import ANALYTICS, SOURCE
from pipeline.errors import PipelineError
from pipeline.roles import grant_job_roles
from tests.conftest import Pipeline

DAY = "2024-01-02"


def refused(conn: psycopg.Connection, statement: str) -> None:
    """``statement`` fails with a privilege error, not with a read-only or other error."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_the_source_role_reads_and_cannot_write(pipeline: Pipeline) -> None:
    with pipeline.connect_as_job(SOURCE) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (830,)
        # Read-only by default too; switched off, the privileges still refuse.
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO region VALUES (99, 'nowhere')")
        conn.execute("SET default_transaction_read_only = off")
        refused(conn, "INSERT INTO region VALUES (99, 'nowhere')")
        refused(conn, "UPDATE orders SET freight = 0")
        refused(conn, "DELETE FROM us_states")
        refused(conn, "TRUNCATE shippers")
        refused(conn, "CREATE TABLE intruder (id integer)")
        refused(conn, "CREATE SCHEMA intruder")
        refused(conn, "DROP TABLE region")
        refused(conn, "ALTER TABLE region ADD COLUMN intruder text")
        refused(conn, "CREATE ROLE intruder")
        refused(conn, "CREATE DATABASE intruder")
    with pipeline.connect(SOURCE) as conn:
        assert conn.execute("SELECT count(*) FROM region WHERE region_id = 99").fetchone() == (0,)


def test_the_analytics_role_owns_what_the_jobs_create_and_nothing_else(pipeline: Pipeline) -> None:
    for job in ("postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics"):
        pipeline.run_ok(job, day=DAY)
    role = pipeline.env[f"{ANALYTICS}_USER"]
    with pipeline.connect(ANALYTICS) as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"
        ).fetchall()
        schema_owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(nspowner) FROM pg_namespace "
            "WHERE nspname !~ '^pg_' AND nspname NOT IN ('information_schema', 'public')"
        ).fetchall()
        # Somebody else's schema and table in the same database.
        conn.execute("CREATE SCHEMA finance")
        conn.execute("CREATE TABLE finance.ledger (id integer)")
        conn.execute("CREATE TABLE public.ledger (id integer)")
    assert owners == [(role,)]
    assert schema_owners in ([(role,)], [])

    with pipeline.connect_as_job(ANALYTICS) as conn:
        for table in ("finance.ledger", "public.ledger"):
            refused(conn, f"SELECT * FROM {table}")
            refused(conn, f"INSERT INTO {table} VALUES (1)")
            refused(conn, f"DROP TABLE {table}")
        refused(conn, "CREATE TABLE finance.intruder (id integer)")
        refused(conn, "DROP SCHEMA finance CASCADE")
        refused(conn, "CREATE ROLE intruder")
        refused(conn, "CREATE DATABASE intruder")
    # The source database is another database: its tables are not the analytics role's.
    password = pipeline.env[f"{ANALYTICS}_PASSWORD"]
    env = {**pipeline.env, f"{SOURCE}_USER": role, f"{SOURCE}_PASSWORD": password}
    as_analytics = Pipeline(env=env, data_dir=pipeline.data_dir)
    with as_analytics.connect_as_job(SOURCE) as conn:
        refused(conn, "SELECT * FROM orders")
        refused(conn, "CREATE SCHEMA intruder")


def test_set_up_refuses_the_administrator_as_a_jobs_role(pipeline: Pipeline) -> None:
    admin = pipeline.env["POSTGRES_ADMIN_USER"]
    with pytest.raises(PipelineError, match=f"TAP_POSTGRES_USER={admin} is also POSTGRES_ADMIN_USER"):
        grant_job_roles({**pipeline.env, f"{SOURCE}_USER": admin})
    with pytest.raises(PipelineError, match="the source's reader must not own the analytics schemas"):
        grant_job_roles({**pipeline.env, f"{ANALYTICS}_USER": pipeline.env[f"{SOURCE}_USER"]})
