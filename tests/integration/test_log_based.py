"""LOG_BASED extraction over several days, by real Meltano, on a throwaway cluster started with wal_level=logical.

Northwind's ``orders``, ``customers`` and ``us_states`` are read ``LOG_BASED`` through one slot
(pgoutput); each day's state as of that day (``pipeline.as_of``) is compared with a
copy of the source taken at the day's snapshot. Day 1 is the initial copy, with a
writer committing during its extract (those changes belong to day 2); day 2 has
inserts, updates (one row twice), deletes and a primary key changed, in both tables,
and a writer during its extract again; day 3's run is killed before its publish,
more changes come, and its rerun reads them all (none lost, none twice); on day 4
nothing changes but one table truncated (read whole); on day 5 a slot moved past the
previous end is refused, and once dropped, the tables start anew, whole. A source
without wal_level=logical is refused in one line.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipeline.core.connections import ADMIN, ANALYTICS, SOURCE
from pipeline.setup.provision import provision
from tests.conftest import Pipeline, project_env
from tests.integration import test_crash
from tests.integration.cluster import Cluster, throwaway_cluster
from tests.integration.test_crash import SESSION, start_paused
from tests.integration.test_live_source import finish, killed_on_failure, wait_until

pytestmark = pytest.mark.integration

JOB = "postgres-to-lfs"
D1, D2, D3, D4, D5 = "2024-02-28", "2024-02-29", test_crash.DAY, "2024-03-02", "2024-03-03"
TABLES = {
    "public": {
        "orders": {"replication-method": "LOG_BASED"},
        "customers": {"replication-method": "LOG_BASED"},
        "us_states": {"replication-method": "LOG_BASED"},
    }
}
QUERIES = {
    "orders": "SELECT order_id::text, ship_city, freight::text FROM {} ",
    "customers": "SELECT customer_id, company_name, city FROM {} ",
    "us_states": "SELECT state_id::text, state_name FROM {} ",
}
State = dict[str, set[tuple]]

paused = test_crash.paused  # the fixture: whatever is left of a paused run is killed


def on(cluster: Cluster, tmp: Path, dump: Path, csv: Path, tables: dict) -> Pipeline:
    """A pipeline whose two databases live on ``cluster``, its tables read as ``tables`` says."""
    suffix = uuid.uuid4().hex[:10]
    env = {
        **project_env(),
        f"{ADMIN}_USER": "postgres",
        f"{ADMIN}_PASSWORD": "",
        "DATA_DIR": str(tmp / "data"),
        "ORDER_DETAILS_CSV": str(csv),
        "TAP_POSTGRES_TABLES": json.dumps(tables),
        "TAP_POSTGRES_REPLICATION_USER": "northwind_replication",
        "TAP_POSTGRES_REPLICATION_PASSWORD": "northwind_replication",
        "TAP_POSTGRES_REPLICATION_SLOT": f"slot_{suffix}",
    }
    for prefix in (SOURCE, ANALYTICS):
        env |= {f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": str(cluster.port)}
    env |= {f"{SOURCE}_DATABASE": f"northwind_{suffix}", f"{ANALYTICS}_DATABASE": f"analytics_{suffix}"}
    provision(dump, env)
    return Pipeline(env=env, data_dir=tmp / "data")


@pytest.fixture(scope="module")
def logical() -> Iterator[Cluster]:
    with throwaway_cluster({"wal_level": "logical"}) as cluster:
        yield cluster


def source_state(conn: psycopg.Connection) -> State:
    return {table: set(conn.execute(query.format(f"public.{table}")).fetchall()) for table, query in QUERIES.items()}


def as_of(conn: psycopg.Connection, day: str) -> State:
    return {
        table: set(conn.execute(query.format(f"pipeline.as_of(NULL::postgres.{table}, %s)"), (day,)).fetchall())
        for table, query in QUERIES.items()
    }


def window(pipeline: Pipeline, day: str, table: str) -> dict:
    receipt = json.loads((pipeline.data_dir / "_runs" / JOB / f"{day}.json").read_text())
    return receipt["tables"][table]["replication"]


def day_rows(pipeline: Pipeline, day: str, table: str) -> list[list[str]]:
    lines = (pipeline.data_dir / "postgres" / table / day / f"{table}.csv").read_text().splitlines()
    return [line.split(",") for line in lines]


def run_rest(pipeline: Pipeline, day: str) -> None:
    for job in ("csv-to-lfs", "lfs-to-analytics"):
        pipeline.run_ok(job, day=day)


def run_with_writer(pipeline: Pipeline, source: psycopg.Connection, day: str, gate: Path, writes: list[str]) -> State:
    """Run step 1 for ``day``, committing ``writes`` after its snapshot (at the pause after the first COPY).

    Returns the source's state at the snapshot (nothing else writes meanwhile).
    """
    process = pipeline.start(JOB, day=day, PIPELINE_TEST_PAUSE_AFTER_FIRST_TABLE=str(gate))
    with killed_on_failure(process):
        wait_until(gate.with_name(gate.name + ".reached").exists, process, "the first table's COPY")
        state = source_state(source)
        for statement in writes:
            source.execute(statement)
        gate.touch()
        stderr = finish(process)
    assert process.returncode == 0, stderr[-4000:]
    return state


def test_log_based_days_hold_the_source_as_of_each_snapshot_through_writers_and_a_crash(
    logical: Cluster, tmp_path: Path, source_files: dict[str, Path], paused: list
) -> None:
    pipeline = on(logical, tmp_path, source_files["northwind.sql"], source_files["order_details.csv"], TABLES)
    expected: dict[str, State] = {}
    with pipeline.connect(SOURCE) as source:
        source.autocommit = True
        expected[D1] = run_with_writer(
            pipeline,
            source,
            D1,
            tmp_path / "gate1",
            [
                "UPDATE public.orders SET ship_city = 'Late' WHERE order_id = 10248",
                "INSERT INTO public.customers (customer_id, company_name, city) VALUES ('LATE1', 'Late Co', 'X')",
            ],
        )
        run_rest(pipeline, D1)

        # Day 2: every kind of change in both tables, a row updated twice, a key changed; a writer during the extract.
        for statement in (
            "INSERT INTO public.orders (order_id, customer_id, ship_city) VALUES (20001, 'VINET', 'New')",
            "UPDATE public.orders SET ship_city = 'Once' WHERE order_id = 10249",
            "UPDATE public.orders SET ship_city = 'Twice', freight = 1.5 WHERE order_id = 10249",
            "DELETE FROM public.orders WHERE order_id = 10250",
            "UPDATE public.orders SET order_id = 30000 WHERE order_id = 10251",
            "INSERT INTO public.customers (customer_id, company_name) VALUES ('NEW01', 'New Co')",
            "UPDATE public.customers SET city = 'Moved' WHERE customer_id = 'ALFKI'",
            "DELETE FROM public.customers WHERE customer_id = 'LATE1'",
        ):
            source.execute(statement)
        expected[D2] = run_with_writer(
            pipeline,
            source,
            D2,
            tmp_path / "gate2",
            ["UPDATE public.orders SET ship_city = 'During day 2' WHERE order_id = 10252"],
        )
        run_rest(pipeline, D2)

        # Day 3: killed before its publish; more changes; the rerun reads them all from the slot.
        source.execute("UPDATE public.orders SET ship_city = 'Pre-crash' WHERE order_id = 10253")
        run = start_paused(pipeline, JOB, "before-publish", tmp_path / "crash")
        paused.append(run)
        run.kill(SESSION)
        assert not (pipeline.data_dir / "_runs" / JOB / f"{D3}.json").exists()
        source.execute("UPDATE public.orders SET ship_city = 'Post-crash' WHERE order_id = 10254")
        source.execute("DELETE FROM public.orders WHERE order_id = 20001")
        expected[D3] = source_state(source)
        pipeline.run_ok(JOB, day=D3)
        run_rest(pipeline, D3)

        # Day 4: nothing changed in orders and customers; us_states truncated and refilled: read whole.
        source.execute("TRUNCATE public.us_states")
        source.execute("INSERT INTO public.us_states (state_id, state_name) VALUES (1, 'Only')")
        expected[D4] = source_state(source)
        pipeline.run_ok(JOB, day=D4)
        run_rest(pipeline, D4)

        # Day 5: the slot was moved past day 4's end (by hand): refused, nothing published; dropped: read anew, whole.
        slot = pipeline.env["TAP_POSTGRES_REPLICATION_SLOT"]
        source.execute("UPDATE public.orders SET ship_city = 'Day 5' WHERE order_id = 10255")
        source.execute("SELECT pg_replication_slot_advance(%s, pg_current_wal_lsn())", (slot,))
        refused = pipeline.run(JOB, day=D5)
        assert refused.returncode != 0
        assert f"replication slot {slot} is at " in refused.stderr
        assert "past the previous day's end" in refused.stderr
        assert not (pipeline.data_dir / "_runs" / JOB / f"{D5}.json").exists()
        source.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        expected[D5] = source_state(source)
        anew = pipeline.run_ok(JOB, day=D5)
        assert f"replication slot {slot} created: public.customers, public.orders, public.us_states read whole" in (
            anew.stderr
        )
        run_rest(pipeline, D5)

    for table in QUERIES:
        windows = [window(pipeline, day, table) for day in (D1, D2, D3, D4, D5)]
        assert windows[0]["start"] is None
        assert windows[4]["start"] is None  # the slot was lost: read whole
        changes = [1, 2] if table == "us_states" else [1, 2, 3]  # us_states truncated on day 4: whole
        assert [windows[i]["start"] for i in changes] == [windows[i - 1]["end"] for i in changes]
        assert {w["method"] for w in windows} == {"LOG_BASED"}
    assert {row[0] for row in day_rows(pipeline, D4, "us_states")[1:]} == {"snapshot"}
    assert {row[0] for row in day_rows(pipeline, D5, "orders")[1:]} == {"snapshot"}
    header, *day2 = day_rows(pipeline, D2, "orders")
    assert header[:3] == ["_pipeline_op", "_pipeline_lsn", "order_id"]
    assert sorted((row[2], row[0]) for row in day2) == [
        ("10248", "update"),  # day 1's writer
        ("10249", "update"),  # twice: one row
        ("10250", "delete"),
        ("10251", "delete"),
        ("20001", "insert"),
        ("30000", "insert"),
    ]
    assert [row[2] for row in day_rows(pipeline, D3, "orders")[1:]] == ["10252", "10253", "10254", "20001"]
    assert day_rows(pipeline, D4, "orders")[1:] == []
    with pipeline.connect(ANALYTICS) as analytics:
        for day, state in expected.items():
            assert as_of(analytics, day) == state, day
        in_result = analytics.execute(
            "SELECT count(*) FROM pipeline.orders_with_details WHERE pipeline_date = %s AND ship_city = 'Twice'",
            (D2,),
        ).fetchone()[0]
        assert in_result > 0  # the challenge's result reads orders as of the day

    # A rerun of a past day republishes its kept files: the same receipt, byte for byte (a slot cannot rewind).
    published = (pipeline.data_dir / "_runs" / JOB / f"{D2}.json").read_bytes()
    pipeline.run_ok(JOB, day=D2)
    assert (pipeline.data_dir / "_runs" / JOB / f"{D2}.json").read_bytes() == published


def test_a_log_based_run_on_a_source_without_wal_level_logical_is_refused_in_one_line(
    tmp_path: Path, source_files: dict[str, Path]
) -> None:
    with throwaway_cluster() as replica:
        pipeline = on(replica, tmp_path, source_files["northwind.sql"], source_files["order_details.csv"], {})
        pipeline.env["TAP_POSTGRES_TABLES"] = json.dumps(TABLES)
        result = pipeline.run(JOB, day=D1)
    assert result.returncode != 0
    assert f"127.0.0.1:{replica.port} has wal_level=replica; LOG_BASED tables" in result.stderr, result.stderr[-3000:]
    assert "ALTER SYSTEM SET wal_level = logical" in result.stderr
