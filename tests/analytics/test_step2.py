"""Step 2 (lfs-to-analytics) by real Meltano on real Postgres, from hand-written step-1 days.

The days hold what Northwind does not: names with quotes, hyphens, dots, spaces, upper
case, non-ASCII and 63 bytes; two source schemas with a table of the same name; a
Postgres table named like the CSV source's; a column added, a table dropped; a
manifest whose count is wrong. Type changes: test_schema_changes.py.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.core.errors import TransientPipelineError
from pipeline.days.receipts import read_day
from pipeline.warehouse.day_change import DEFAULT_LOCK_TIMEOUT
from pipeline.warehouse.publish import publish_day
from tests.analytics.days import JOBS, Analytics, Table, as_date, csv_table, write_day
from tests.conftest import unfenced

pytestmark = pytest.mark.integration

DAY1, DAY2 = "2024-01-02", "2024-01-03"
LONG = "l" * 60 + "ong"  # 63 bytes, the most PostgreSQL allows
ORDERS = {
    "order_id": "smallint",
    "customer_id": "text",
    "employee_id": "smallint",
    "order_date": "date",
    "required_date": "date",
    "shipped_date": "date",
    "ship_via": "smallint",
    "freight": "real",
    "ship_name": "varchar(40)",
    "ship_address": "varchar(40)",
    "ship_city": "text",
    "ship_region": "text",
    "ship_postal_code": "text",
    "ship_country": "text",
}
DETAILS = {
    "order_id": "smallint",
    "product_id": "smallint",
    "unit_price": "real",
    "quantity": "smallint",
    "discount": "real",
}


def orders(*ids: int) -> Table:
    rows = "".join(f'{i},"C,""{i}",1,2024-01-01,,,1,1.5,Ship,Addr,City,,,Land\n' for i in ids)
    return Table("orders", ORDERS, ",".join(ORDERS) + "\n" + rows, key=["order_id"])


def details(*ids: int) -> Table:
    rows = "".join(f"{i},{p},2.5,{p},0\n" for i in ids for p in (11, 12))
    return csv_table("order_details", DETAILS, ",".join(DETAILS) + "\n" + rows, key=["order_id", "product_id"])


AWKWARD = [
    Table(
        'Order "Lines"-2024',
        {"Line ID": "integer", "amount.eur": "numeric(12,2)"},
        "Line ID,amount.eur\n1,1.50\n2,\n",
        key=["Line ID"],
    ),
    Table(
        "заказы",
        {"id": "bigint", "tags": "int4[]", "blob": "bytea"},
        'id,tags,blob\n1,"{1,2}",\\x00ff\n2,,""\n',
        key=["id"],
    ),
    Table(LONG, {"x": "text"}, 'x\n""\n\n'),
    Table("order_details", {"id": "smallint"}, "id\n7\n", key=["id"]),
    Table("orders", {"n": "smallint"}, "n\n1\n", key=["n"], source_schema="Sales"),
]


def publish_awkward_day(analytics: Analytics, day: str) -> None:
    write_day(analytics.data_dir, day, JOBS[0], [orders(1, 2), *AWKWARD])
    write_day(analytics.data_dir, day, JOBS[1], [details(1, 2)])
    analytics.meltano_ok("lfs-to-analytics", day=day)


def columns(analytics: Analytics, schema: str, table: str) -> list[tuple[str, str]]:
    with analytics.connect() as conn:
        return conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (schema, table),
        ).fetchall()


def test_every_table_keeps_its_exact_name_types_and_values(analytics: Analytics) -> None:
    publish_awkward_day(analytics, DAY1)

    with analytics.connect() as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('postgres', 'postgres__Sales', 'csv', 'pipeline') AND c.relkind IN ('p', 'r', 'v') "
            "ORDER BY 1, 2"
        ).fetchall()
        assert sorted(tables) == [
            ("csv", "order_details", "p"),
            ("pipeline", "loaded_tables", "r"),
            ("pipeline", "migrated_columns", "r"),
            ("pipeline", "orders_with_details", "v"),
            ("pipeline", "run_claims", "r"),
            ("pipeline", "table_days", "r"),
            ("postgres", 'Order "Lines"-2024', "p"),
            ("postgres", LONG, "p"),
            ("postgres", "order_details", "p"),
            ("postgres", "orders", "p"),
            ("postgres", "заказы", "p"),
            ("postgres__Sales", "orders", "p"),
        ]
        assert conn.execute('SELECT * FROM postgres."Order ""Lines""-2024" ORDER BY 2').fetchall() == [
            (dt.date(2024, 1, 2), 1, 1.5),
            (dt.date(2024, 1, 2), 2, None),
        ]
        assert conn.execute('SELECT id, tags, blob FROM postgres."заказы" ORDER BY 1').fetchall() == [
            (1, [1, 2], b"\x00\xff"),
            (2, None, b""),
        ]
        assert conn.execute(f'SELECT x FROM postgres."{LONG}" ORDER BY 1').fetchall() == [("",), (None,)]
        assert conn.execute('SELECT n FROM "postgres__Sales".orders').fetchall() == [(1,)]
        assert conn.execute("SELECT id FROM postgres.order_details").fetchall() == [(7,)]
        assert conn.execute("SELECT count(*) FROM csv.order_details").fetchone() == (4,)
    assert columns(analytics, "postgres", 'Order "Lines"-2024') == [
        ("pipeline_date", "date"),
        ("Line ID", "integer"),
        ("amount.eur", "numeric(12,2)"),
    ]
    assert columns(analytics, "postgres", "заказы")[1:] == [("id", "bigint"), ("tags", "integer[]"), ("blob", "bytea")]
    assert len(analytics.exported(DAY1)) == 4


def test_each_day_is_a_partition_keyed_by_source_key_and_day(analytics: Analytics) -> None:
    publish_awkward_day(analytics, DAY1)
    publish_awkward_day(analytics, DAY2)

    with analytics.connect() as conn:
        parts = conn.execute(
            "SELECT pg_get_expr(c.relpartbound, c.oid), n.nspname LIKE 'pipeline\\_%', c.relname "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            'WHERE i.inhparent = \'postgres."Order ""Lines""-2024"\'::regclass ORDER BY 1'
        ).fetchall()
        key = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            'WHERE conrelid = \'postgres."Order ""Lines""-2024"\'::regclass AND contype = \'p\''
        ).fetchone()
        counts = conn.execute(
            "SELECT pipeline_date::text, schema_name, table_name, manifest_rows, loaded_rows "
            "FROM pipeline.loaded_tables WHERE table_name = 'orders' ORDER BY 1, 2"
        ).fetchall()
    assert parts == [
        ("FOR VALUES IN ('2024-01-02')", True, 'Order "Lines"-2024'),
        ("FOR VALUES IN ('2024-01-03')", True, 'Order "Lines"-2024'),
    ]
    assert key == ('PRIMARY KEY ("Line ID", pipeline_date)',)
    assert counts == [
        (DAY1, "postgres", "orders", 2, 2),
        (DAY1, "postgres__Sales", "orders", 1, 1),
        (DAY2, "postgres", "orders", 2, 2),
        (DAY2, "postgres__Sales", "orders", 1, 1),
    ]


def test_republishing_replaces_the_day_drops_gone_tables_and_adds_new_columns(analytics: Analytics) -> None:
    publish_awkward_day(analytics, DAY1)
    publish_awkward_day(analytics, DAY2)
    region = Table("region", {"id": "smallint", "name": "text"}, "id,name\n1,East\n", key=["id"])
    write_day(analytics.data_dir, DAY1, JOBS[0], [orders(3), region])  # the awkward tables are gone
    write_day(analytics.data_dir, DAY1, JOBS[1], [details(3)])
    analytics.meltano_ok("lfs-to-analytics", day=DAY1)
    added = Table(
        "region", {"id": "smallint", "name": "text", "code": "varchar(40)"}, "id,name,code\n1,East,E\n", key=["id"]
    )
    write_day(analytics.data_dir, DAY2, JOBS[0], [orders(1, 2), *AWKWARD, added])
    write_day(analytics.data_dir, DAY2, JOBS[1], [details(1, 2)])
    analytics.meltano_ok("lfs-to-analytics", day=DAY2)

    with analytics.connect() as conn:
        per_day = conn.execute(
            "SELECT pipeline_date::text, array_agg(order_id ORDER BY order_id) FROM postgres.orders GROUP BY 1 "
            "ORDER BY 1"
        ).fetchall()
        awkward = conn.execute('SELECT DISTINCT pipeline_date::text FROM postgres."Order ""Lines""-2024"').fetchall()
        regions = conn.execute("SELECT pipeline_date::text, id, name, code FROM postgres.region ORDER BY 1").fetchall()
        schemas = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pipeline\\_%' AND nspname NOT IN "
            "(SELECT load_schema FROM pipeline.loaded_tables)"
        ).fetchone()
    assert per_day == [(DAY1, [3]), (DAY2, [1, 2])]
    assert awkward == [(DAY2,)]
    assert regions == [(DAY1, 1, "East", None), (DAY2, 1, "East", "E")]
    assert schemas == (0,)  # the replaced loads' schemas are gone
    assert [r["order_id"] for r in analytics.exported(DAY1)] == [3, 3]


def test_unloadable_columns_are_refused_one_line_each_and_nothing_is_published(analytics: Analytics) -> None:
    bad = Table("events", {"pipeline_date": "date", "id": "integer"}, "pipeline_date,id\n2024-01-01,1\n")
    people = Table(
        "people", {"id": "integer", "mood": "public.mood", "tables": "regclass[]"}, 'id,mood,tables\n1,ok,"{x}"\n'
    )
    write_day(analytics.data_dir, DAY1, JOBS[0], [orders(1), bad, people])
    write_day(analytics.data_dir, DAY1, JOBS[1], [details(1)])

    result = analytics.meltano("lfs-to-analytics", day=DAY1)

    assert result.returncode != 0
    assert "table 'postgres'.'events', column 'pipeline_date': the name is reserved" in result.stderr
    assert (
        "table 'postgres'.'people', column 'mood': type public.mood (oid 16500) is not built into PostgreSQL"
        in result.stderr
    )
    assert "table 'postgres'.'people', column 'tables': type regclass[] cannot travel as itself" in result.stderr
    assert "Traceback" not in result.stderr
    with analytics.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_partitioned_table").fetchone() == (0,)


def test_a_count_that_differs_from_the_manifest_is_refused_naming_both(analytics: Analytics) -> None:
    publish_awkward_day(analytics, DAY1)
    short = orders(1, 2)
    short.rows = 3  # the manifest claims a row the file does not hold
    write_day(analytics.data_dir, DAY1, JOBS[0], [short])
    write_day(analytics.data_dir, DAY1, JOBS[1], [details(1, 2)])

    result = analytics.meltano("lfs-to-analytics", day=DAY1)

    assert result.returncode != 0
    assert "table 'postgres'.'orders': loaded 2 rows, its manifest says 3" in result.stderr
    with analytics.connect() as conn:  # the published day is untouched
        assert conn.execute('SELECT count(*) FROM postgres."заказы"').fetchone() == (2,)


def test_a_source_without_orders_publishes_its_tables_and_skips_the_export(analytics: Analytics) -> None:
    region = Table("region", {"id": "smallint"}, "id\n1\n", key=["id"])
    write_day(analytics.data_dir, DAY1, JOBS[0], [region])
    write_day(analytics.data_dir, DAY1, JOBS[1], [details(1)])

    result = analytics.meltano_ok("lfs-to-analytics", day=DAY1)

    assert "export 2024-01-02: skipped: the day has no table postgres.orders" in result.stderr
    assert not analytics.results(DAY1).exists()
    with analytics.connect() as conn:
        assert conn.execute("SELECT id FROM postgres.region").fetchall() == [(1,)]


def test_a_lock_held_too_long_is_a_transient_refusal_and_changes_nothing(analytics: Analytics) -> None:
    publish_awkward_day(analytics, DAY1)
    write_day(analytics.data_dir, DAY1, JOBS[0], [orders(5), *AWKWARD])
    write_day(analytics.data_dir, DAY1, JOBS[1], [details(5)])
    analytics.meltano_ok("tap-lfs", "target-analytics", day=DAY1)
    receipts = read_day(analytics.data_dir, as_date(DAY1), list(JOBS))

    with analytics.connect() as reader, analytics.connect() as conn:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM postgres.orders")  # holds its lock until the end of the transaction
        with pytest.raises(TransientPipelineError, match="lock_timeout 200ms"):
            publish_day(conn, as_date(DAY1), receipts, "200ms", unfenced)
        reader.execute("ROLLBACK")
        assert conn.execute("SELECT order_id FROM postgres.orders").fetchall() == [(1,), (2,)]
        published = publish_day(conn, as_date(DAY1), receipts, DEFAULT_LOCK_TIMEOUT, unfenced)
        assert conn.execute("SELECT order_id FROM postgres.orders").fetchall() == [(5,)]
    assert published.rows["'postgres'.'orders'"] == 1


def test_publish_refuses_a_load_that_is_not_the_receipts_as_transient_step1_ran_again(analytics: Analytics) -> None:
    write_day(analytics.data_dir, DAY1, JOBS[0], [orders(1)])
    write_day(analytics.data_dir, DAY1, JOBS[1], [details(1)])
    analytics.meltano_ok("tap-lfs", "target-analytics", day=DAY1)
    write_day(analytics.data_dir, DAY1, JOBS[0], [orders(1, 2)])  # step 1 ran again after the load

    with (
        analytics.connect() as conn,
        pytest.raises(TransientPipelineError, match="loaded from another file than the receipt"),
    ):
        publish_day(
            conn, as_date(DAY1), read_day(analytics.data_dir, as_date(DAY1), list(JOBS)), DEFAULT_LOCK_TIMEOUT, unfenced
        )


def test_a_file_postgres_cannot_load_fails_in_one_line_naming_file_and_table(analytics: Analytics) -> None:
    twice = Table("region", {"id": "smallint"}, "id\n1\n1\n", key=["id"])  # its key holds a value twice
    write_day(analytics.data_dir, DAY1, JOBS[0], [orders(1), twice])
    write_day(analytics.data_dir, DAY1, JOBS[1], [details(1)])

    result = analytics.meltano("lfs-to-analytics", day=DAY1)

    assert result.returncode != 0
    assert "region.csv cannot be loaded into table 'postgres'.'region': could not create unique index" in result.stderr
    assert "Traceback" not in result.stderr
