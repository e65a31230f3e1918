"""Reading a table as of a day in every mode: ``pipeline.as_of``, the result view, and retention's base.

Step 1's days are written by hand (``write_day``) with the windows an incremental
extract records, and loaded by real Meltano into real Postgres.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from pipeline.days.bookmarks import Window
from tests.analytics.days import JOBS, Analytics, Table, write_day
from tests.analytics.test_step2 import ORDERS, details

pytestmark = pytest.mark.integration

TODAY = dt.datetime.now(dt.UTC).date()
D1, D2, D3, D4 = (TODAY - dt.timedelta(days=n) for n in (12, 11, 10, 2))
FULL = Window("INCREMENTAL", "order_id", None, "3")


def orders(cities: dict[int, str]) -> Table:
    """Table ``orders`` whose order ``i`` ships to city ``cities[i]``."""
    rows = "".join(f"{i},C{i},1,2024-01-01,,,1,1.5,Ship,Addr,{city},,,Land\n" for i, city in sorted(cities.items()))
    return Table("orders", ORDERS, ",".join(ORDERS) + "\n" + rows, key=["order_id"])


def load(analytics: Analytics, day: dt.date, cities: dict[int, str], window: Window | None) -> None:
    """Publish ``day``'s orders (``window``: read incrementally) and the details of orders 1..5, then load it."""
    write_day(analytics.data_dir, day.isoformat(), JOBS[0], [orders(cities)], {"orders": window} if window else None)
    write_day(analytics.data_dir, day.isoformat(), JOBS[1], [details(1, 2, 3, 4, 5)])
    analytics.meltano_ok("lfs-to-analytics", day=day.isoformat())


def as_of(conn: psycopg.Connection, day: dt.date) -> dict[int, str]:
    rows = conn.execute(
        "SELECT order_id, ship_city FROM pipeline.as_of(NULL::postgres.orders, %s) ORDER BY 1", (day,)
    ).fetchall()
    return dict(rows)


def result(conn: psycopg.Connection, day: dt.date) -> dict[int, str]:
    rows = conn.execute(
        "SELECT DISTINCT order_id, ship_city FROM pipeline.orders_with_details WHERE pipeline_date = %s", (day,)
    ).fetchall()
    return dict(rows)


# The state of orders on each day; the partitions of D2 and D3 hold only what changed.
STATES = {
    D1: {1: "Bern", 2: "Oslo", 3: "Rome"},
    D2: {1: "Bern", 2: "Lima", 3: "Rome", 4: "Kiev"},
    D3: {1: "Bern", 2: "Lima", 3: "Rome", 4: "Riga", 5: "Pisa"},
    D4: {1: "Bern", 2: "Lima", 3: "Rome", 4: "Riga", 5: "Nice"},
}
CHANGES = {D2: ({2: "Lima", 4: "Kiev"}, "3", "4"), D3: ({4: "Riga", 5: "Pisa"}, "4", "5"), D4: ({5: "Nice"}, "5", "5")}


def load_days(analytics: Analytics) -> None:
    load(analytics, D1, STATES[D1], FULL)
    for day, (changed, start, end) in CHANGES.items():
        load(analytics, day, changed, Window("INCREMENTAL", "order_id", start, end))


def test_as_of_merges_the_changes_since_the_last_whole_state_and_the_result_reads_orders_through_it(
    analytics: Analytics,
) -> None:
    load_days(analytics)

    with analytics.connect() as conn:
        for day, state in STATES.items():
            assert as_of(conn, day) == state, day
            assert result(conn, day) == state, day
        assert conn.execute(
            "SELECT pipeline_date, holds FROM pipeline.table_days WHERE table_name = 'orders' ORDER BY 1"
        ).fetchall() == [(D1, "state"), (D2, "changes"), (D3, "changes"), (D4, "changes")]
        # The day's changes are the day's partition.
        assert conn.execute("SELECT count(*) FROM postgres.orders WHERE pipeline_date = %s", (D3,)).fetchone() == (2,)
    exported = analytics.exported(D3.isoformat())
    assert {(row["order_id"], row["ship_city"]) for row in exported} == set(STATES[D3].items())


def test_a_full_table_day_is_read_as_its_partition(analytics: Analytics) -> None:
    load(analytics, D1, STATES[D1], None)
    load(analytics, D2, {1: "Bern"}, None)

    with analytics.connect() as conn:
        assert as_of(conn, D1) == STATES[D1]
        assert as_of(conn, D2) == {1: "Bern"}
        assert result(conn, D2) == {1: "Bern"}


def test_retention_folds_pruned_days_into_a_base_so_every_kept_day_reads_the_same(analytics: Analytics) -> None:
    load_days(analytics)

    for keep in ("11", "9"):  # D1, then D2 and D3: the base moves from D1 to D3
        pruned = analytics.invoke("prune", RETENTION_DAYS=keep)
        assert pruned.returncode == 0, pruned.stderr[-4000:]
        with analytics.connect() as conn:
            kept = [day for day in STATES if day >= TODAY - dt.timedelta(days=int(keep))]
            for day in kept:
                assert as_of(conn, day) == STATES[day], (keep, day)
                assert result(conn, day) == STATES[day], (keep, day)

    with analytics.connect() as conn:
        days = conn.execute(
            "SELECT pipeline_date, holds FROM pipeline.table_days WHERE table_name = 'orders' ORDER BY 1"
        ).fetchall()
        bases = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE starts_with(nspname, 'pipeline_base_')"
        ).fetchone()[0]
        partitions = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'postgres.orders'::regclass"
        ).fetchone()[0]
    assert days == [(D3, "state"), (D4, "changes")]
    assert (bases, partitions) == (1, 2)
    assert "prune: nothing older than" in analytics.invoke("prune", RETENTION_DAYS="9").stdout
