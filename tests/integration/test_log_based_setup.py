"""What set-up gives LOG_BASED tables (pipeline.setup.replication): the publication, the replication role, the checks.

On a throwaway cluster started with ``wal_level=logical``; the refusal of a server
without it on one started with the default (``replica``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipeline.core.errors import PipelineError
from pipeline.setup.replication import provision_log_based, slot_report
from tests.integration.cluster import ADMIN, Cluster, throwaway_cluster

TABLES = {"public": {"orders": {"replication-method": "LOG_BASED"}, "lines": {"replication-method": "LOG_BASED"}}}


def source_env(cluster: Cluster, tables: dict) -> dict[str, str]:
    return {
        "TAP_POSTGRES_HOST": "127.0.0.1",
        "TAP_POSTGRES_PORT": str(cluster.port),
        "TAP_POSTGRES_DATABASE": "postgres",
        "TAP_POSTGRES_USER": "reader",
        "TAP_POSTGRES_PASSWORD": "reader",
        "TAP_POSTGRES_REPLICATION_USER": "replicator",
        "TAP_POSTGRES_REPLICATION_PASSWORD": "replicator",
        "TAP_POSTGRES_TABLES": json.dumps(tables),
        "POSTGRES_ADMIN_USER": ADMIN,
    }


@pytest.fixture(scope="module")
def logical() -> Iterator[Cluster]:
    with throwaway_cluster({"wal_level": "logical"}) as cluster:
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
            conn.execute("CREATE TABLE lines (order_id int, n int, PRIMARY KEY (order_id, n))")
            conn.execute("CREATE TABLE keyless (v text)")
            conn.execute("CREATE TABLE other (id int PRIMARY KEY)")
        yield cluster


def published(cluster: Cluster) -> set[str]:
    with psycopg.connect(cluster.conninfo()) as conn:
        rows = conn.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = 'northwind_pipeline'")
        return {name for (name,) in rows}


def test_setup_publishes_exactly_the_log_based_tables_and_creates_a_replication_only_role(logical: Cluster) -> None:
    env = source_env(logical, TABLES)

    done = provision_log_based(env)
    provision_log_based(env)  # again: idempotent

    assert done == ["log-based: publication northwind_pipeline publishes public.lines, public.orders; "
                    "replicator reads it (REPLICATION, no table access)"]  # fmt: skip
    assert published(logical) == {"orders", "lines"}
    with psycopg.connect(logical.conninfo()) as conn:
        powers = conn.execute(
            "SELECT rolcanlogin, rolreplication, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls "
            "FROM pg_roles WHERE rolname = 'replicator'"
        ).fetchone()
        assert powers == (True, True, False, False, False, False)
        assert conn.execute("SELECT has_table_privilege('replicator', 'orders', 'SELECT')").fetchone() == (False,)

    provision_log_based(source_env(logical, {"public": {"orders": {"replication-method": "LOG_BASED"}}}))
    assert published(logical) == {"orders"}
    assert provision_log_based(source_env(logical, {})) == []


def test_a_log_based_table_without_a_primary_key_or_missing_is_refused_in_one_line(logical: Cluster) -> None:
    with pytest.raises(PipelineError, match=r"^table public\.keyless is LOG_BASED .* has no primary key"):
        provision_log_based(source_env(logical, {"public": {"keyless": {"replication-method": "LOG_BASED"}}}))
    with pytest.raises(PipelineError, match=r"reads table public\.nope LOG_BASED, but the source has no such table"):
        provision_log_based(source_env(logical, {"public": {"nope": {"replication-method": "LOG_BASED"}}}))


def test_a_source_without_wal_level_logical_is_refused_in_one_line_saying_what_to_set() -> None:
    with throwaway_cluster() as replica, pytest.raises(PipelineError) as refused:
        provision_log_based(source_env(replica, TABLES))
    line = str(refused.value)
    assert "\n" not in line
    assert f"127.0.0.1:{replica.port} has wal_level=replica" in line
    assert "ALTER SYSTEM SET wal_level = logical" in line


def test_the_slot_report_says_what_it_holds_and_fails_when_no_run_read_it_for_n_days(
    logical: Cluster, tmp_path: Path
) -> None:
    env = source_env(logical, TABLES)
    provision_log_based(env)
    now = dt.datetime.now(dt.UTC)
    assert slot_report(env, tmp_path, now) == (
        "slot northwind_pipeline: none yet (the first LOG_BASED run creates it)",
        False,
    )
    with psycopg.connect(logical.conninfo(), autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot('northwind_pipeline', 'pgoutput')")
    try:
        receipt = tmp_path / "_runs/postgres-to-lfs/2024-01-02.json"
        receipt.parent.mkdir(parents=True)
        entry = {"replication": {"method": "LOG_BASED", "key": None, "start": "0/1", "end": "0/2"}}
        receipt.write_text(json.dumps({"tables": {"orders": entry}}))
        three_days_ago = (now - dt.timedelta(days=3)).timestamp()
        os.utime(receipt, (three_days_ago, three_days_ago))

        line, stale = slot_report({**env, "PIPELINE_SLOT_STALE_DAYS": "4"}, tmp_path, now)
        assert not stale
        assert "holds" in line
        assert "of WAL (wal_status reserved)" in line
        line, stale = slot_report(env, tmp_path, now)  # the default: 2 days
        assert stale
        assert "STALE: no run for over 2 days (PIPELINE_SLOT_STALE_DAYS)" in line
        assert "max_slot_wal_keep_size" in line
    finally:
        with psycopg.connect(logical.conninfo(), autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot('northwind_pipeline')")
