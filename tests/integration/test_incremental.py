"""INCREMENTAL extraction over several days of a source that changes, by real Meltano on real Postgres.

Northwind's ``orders`` gets a ``version`` column that a trigger raises on every insert
and update (an ``updated_at`` without clocks), and is read ``INCREMENTAL`` by it. Each
day's state as of that day (``pipeline.as_of``) is compared with a copy of the source
taken at the day's snapshot; a writer commits during the first day's extract (after
its snapshot: those changes belong to the next day); past days are rerun (the kept
file is republished, or with ``PIPELINE_REEXTRACT=1`` its window read again), and a
first run of a day before the published ones is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from pipeline.core.connections import ANALYTICS, SOURCE
from tests.conftest import Pipeline
from tests.integration.test_live_source import finish, killed_on_failure, wait_until

pytestmark = pytest.mark.integration

JOB = "postgres-to-lfs"
D0, D1, D2, D3 = "2024-06-01", "2024-06-02", "2024-06-03", "2024-06-04"
TABLES = {"public": {"orders": {"replication-method": "INCREMENTAL", "replication-key": "version"}}}
VERSIONED = """
CREATE SEQUENCE public.orders_version;
ALTER TABLE public.orders ADD COLUMN version bigint;
UPDATE public.orders SET version = nextval('public.orders_version');
CREATE FUNCTION public.bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.version IS NULL
       OR TG_OP = 'UPDATE' AND NEW.version IS NOT DISTINCT FROM OLD.version THEN
        NEW.version := nextval('public.orders_version');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER bump BEFORE INSERT OR UPDATE ON public.orders FOR EACH ROW EXECUTE FUNCTION public.bump_version();
"""
State = dict[int, tuple[str | None, int]]


def source_state(conn: psycopg.Connection) -> State:
    rows = conn.execute("SELECT order_id, ship_city, version FROM public.orders").fetchall()
    return {order: (city, version) for order, city, version in rows}


def as_of(conn: psycopg.Connection, day: str) -> State:
    rows = conn.execute(
        "SELECT order_id, ship_city, version FROM pipeline.as_of(NULL::postgres.orders, %s)", (day,)
    ).fetchall()
    return {order: (city, version) for order, city, version in rows}


def receipt(pipeline: Pipeline, day: str) -> dict:
    return json.loads((pipeline.data_dir / "_runs" / JOB / f"{day}.json").read_text())


def window(pipeline: Pipeline, day: str) -> dict:
    return receipt(pipeline, day)["tables"]["orders"]["replication"]


def run_day(pipeline: Pipeline, day: str) -> None:
    for job in (JOB, "csv-to-lfs", "lfs-to-analytics"):
        pipeline.run_ok(job, day=day)


def test_days_read_incrementally_hold_the_source_as_of_each_snapshot(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.env["TAP_POSTGRES_TABLES"] = json.dumps(TABLES)
    expected: dict[str, State] = {}
    with pipeline.connect(SOURCE) as source:
        source.execute(VERSIONED)

        # Day 1, the full load; a writer commits after its snapshot (at the pause after the first table).
        gate = tmp_path / "gate"
        process = pipeline.start(JOB, day=D1, PIPELINE_TEST_PAUSE_AFTER_FIRST_TABLE=str(gate))
        with killed_on_failure(process):
            wait_until(gate.with_name("gate.reached").exists, process, "the first table's COPY")
            expected[D1] = source_state(source)
            source.execute("UPDATE public.orders SET ship_city = 'Late' WHERE order_id = 10248")
            source.execute(
                "INSERT INTO public.orders (order_id, customer_id, ship_city) VALUES (20000, 'VINET', 'New')"
            )
            gate.touch()
            stderr = finish(process)
        assert process.returncode == 0, stderr[-4000:]
        for job in ("csv-to-lfs", "lfs-to-analytics"):
            pipeline.run_ok(job, day=D1)

        # Day 2: an insert, a row updated twice, and a key set back in time (INCREMENTAL cannot see it).
        source.execute("INSERT INTO public.orders (order_id, ship_city) VALUES (20001, 'Two')")
        source.execute("UPDATE public.orders SET ship_city = 'Once' WHERE order_id = 10249")
        source.execute("UPDATE public.orders SET ship_city = 'Twice' WHERE order_id = 10249")
        before_back = source_state(source)[10250]
        source.execute("UPDATE public.orders SET ship_city = 'Back', version = 1 WHERE order_id = 10250")
        expected[D2] = {**source_state(source), 10250: before_back}
        run_day(pipeline, D2)

        # Day 3: one more update, of a row day 2 also changed.
        source.execute("UPDATE public.orders SET ship_city = 'Thrice' WHERE order_id = 10249")
        expected[D3] = {**source_state(source), 10250: before_back}
        run_day(pipeline, D3)

    windows = {day: window(pipeline, day) for day in (D1, D2, D3)}
    assert windows[D1]["start"] is None
    assert windows[D2]["start"] == windows[D1]["end"]
    assert windows[D3]["start"] == windows[D2]["end"]
    with pipeline.connect(ANALYTICS) as analytics:
        for day, state in expected.items():
            assert as_of(analytics, day) == state, day
        day2_rows = analytics.execute("SELECT order_id FROM postgres.orders WHERE pipeline_date = %s", (D2,)).fetchall()
        assert sorted(day2_rows) == [(10248,), (10249,), (20000,), (20001,)]  # the writer's two, and day 2's
        in_result = analytics.execute(
            "SELECT count(DISTINCT order_id) FROM pipeline.orders_with_details WHERE pipeline_date = %s", (D3,)
        ).fetchone()[0]
        assert in_result == 830  # every order of Northwind's details, as of day 3

    # A first run of a day before the published ones is refused in one line, writing nothing.
    refused = pipeline.run(JOB, day=D0)
    assert refused.returncode != 0
    assert (
        "refused: table public.orders is read INCREMENTAL and postgres-to-lfs already has a receipt for the later "
        f"day {D1}" in refused.stderr
    )
    assert not (pipeline.data_dir / "_runs" / JOB / f"{D0}.json").exists()

    # A rerun of a past day republishes its kept file: the same receipt, byte for byte.
    published = (pipeline.data_dir / "_runs" / JOB / f"{D2}.json").read_bytes()
    pipeline.run_ok(JOB, day=D2)
    assert (pipeline.data_dir / "_runs" / JOB / f"{D2}.json").read_bytes() == published

    # Asked for, the past day's window is read again: the same window, and order 10249 has left it (day 3 has it).
    result = pipeline.run(JOB, day=D2, PIPELINE_REEXTRACT="1")
    assert result.returncode == 0, result.stderr[-4000:]
    assert window(pipeline, D2) == windows[D2]
    lines = (pipeline.data_dir / "postgres" / "orders" / D2 / "orders.csv").read_text().splitlines()[1:]
    assert sorted(int(line.split(",")[0]) for line in lines) == [10248, 20000, 20001]
