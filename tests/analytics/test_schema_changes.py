"""Schema changes by contract (README "Schema changes"), by real Meltano on real Postgres.

A lossless widening (``pipeline.warehouse.widening``) is applied to the analytics table by the
day that brings it, every earlier day kept; an earlier day rerun afterwards loads into
the wider type. Any other type change is refused in one line naming the table, the
column, both types and the ``pipeline migrate`` command, which converts every day's
values or refuses naming the first that does not convert; after it, the day runs.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex

import pytest

from pipeline.warehouse.day_change import PUBLISH_LOCK
from tests.analytics.days import JOBS, Analytics, Table, write_day
from tests.analytics.test_step2 import ORDERS, details, orders

pytestmark = pytest.mark.integration

DAY1, DAY2 = "2024-01-02", "2024-01-03"
NARROW = {"id": "smallint", "n": "smallint", "name": "varchar(40)", "ratio": "real", "amount": "numeric(12,2)"}
WIDE = {"id": "integer", "n": "bigint", "name": "varchar(200)", "ratio": "double precision", "amount": "numeric(14,2)"}
MEASURES = "SELECT pipeline_date::text, n, name, ratio, amount::text FROM postgres.measures ORDER BY 1"
MIGRATE = re.compile(r"\.venv/bin/meltano invoke pipeline (migrate .*)$", re.MULTILINE)


def measures(columns: dict[str, str], *rows: str) -> Table:
    return Table("measures", columns, ",".join(columns) + "\n" + "".join(f"{row}\n" for row in rows), key=["id"])


def wide_orders(*ids: int) -> Table:
    """orders whose freight widened from real to double precision (a column the result view reads)."""
    table = orders(*ids)
    return Table("orders", {**ORDERS, "freight": "double precision"}, table.body, key=table.key)


def publish(analytics: Analytics, day: str, *tables: Table) -> None:
    write_day(analytics.data_dir, day, JOBS[0], list(tables))
    write_day(analytics.data_dir, day, JOBS[1], [details(1)])


def column_types(analytics: Analytics, table: str) -> dict[str, str]:
    with analytics.connect() as conn:
        return dict(
            conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (f"postgres.{table}",),
            ).fetchall()
        )


def rows(analytics: Analytics, query: str) -> list[tuple]:
    with analytics.connect() as conn:
        return conn.execute(query).fetchall()


def loaded_types(analytics: Analytics, day: str, table: str) -> dict[str, str]:
    """Load ``day`` without publishing it; the column types of its load's ``table`` (before any publish)."""
    analytics.meltano_ok("tap-lfs", "target-analytics", day=day)
    with analytics.connect() as conn:
        (schema,) = conn.execute(
            "SELECT load_schema FROM pipeline.loaded_tables WHERE pipeline_date = %s AND table_name = %s "
            "AND published_at IS NULL",
            (day, table),
        ).fetchone()
        return dict(
            conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
                (schema, table),
            ).fetchall()
        )


def refused_change(analytics: Analytics, before: str, rows_before: list[str]) -> list[str]:
    """Publish DAY1 with column ``n`` of type ``before``, then DAY2's ``n integer`` refused; the migrate arguments.

    They are those of the command the refusal names, exactly as given.
    """
    publish(analytics, DAY1, orders(1), measures({"id": "integer", "n": before}, *rows_before))
    analytics.meltano_ok("lfs-to-analytics", day=DAY1)
    publish(analytics, DAY2, orders(1), measures({"id": "integer", "n": "integer"}, "1,42"))
    refused = analytics.meltano("lfs-to-analytics", day=DAY2)
    command = MIGRATE.search(refused.stderr)
    assert command, refused.stderr[-3000:]
    return shlex.split(command.group(1))


def migrate_ok(analytics: Analytics, arguments: list[str]) -> str:
    """Run ``pipeline migrate``; its output, or the test fails."""
    result = analytics.invoke(*arguments)
    return result.stdout + result.stderr if result.returncode == 0 else pytest.fail(result.stderr[-3000:])


def test_a_lossless_widening_by_a_new_day_is_applied_and_earlier_days_keep_their_rows(analytics: Analytics) -> None:
    publish(analytics, DAY1, orders(1), measures(NARROW, "1,32767,short,0.5,1234567890.12"))
    analytics.meltano_ok("lfs-to-analytics", day=DAY1)
    publish(analytics, DAY2, wide_orders(1), measures(WIDE, "1,9000000000,a longer name,0.1,123456789012.34"))

    analytics.meltano_ok("lfs-to-analytics", day=DAY2)

    assert column_types(analytics, "measures") == {
        "pipeline_date": "date",
        "id": "integer",
        "n": "bigint",
        "name": "character varying(200)",
        "ratio": "double precision",
        "amount": "numeric(14,2)",
    }
    assert column_types(analytics, "orders")["freight"] == "double precision"
    assert rows(analytics, MEASURES) == [
        (DAY1, 32767, "short", 0.5, "1234567890.12"),
        (DAY2, 9000000000, "a longer name", 0.1, "123456789012.34"),
    ]
    # The result view reads the widened column again.
    assert rows(analytics, "SELECT DISTINCT pipeline_date::text, freight FROM pipeline.orders_with_details") == [
        (DAY1, 1.5),
        (DAY2, 1.5),
    ]
    assert analytics.exported(DAY2)[0]["freight"] == 1.5

    # An earlier day rerun afterwards: its file still declares the narrow types, it loads into the wide ones.
    publish(analytics, DAY1, orders(1, 2), measures(NARROW, "1,-32768,rerun,0.25,-0.01"))
    assert loaded_types(analytics, DAY1, "measures") == column_types(analytics, "measures")
    analytics.meltano_ok("lfs-to-analytics", day=DAY1)

    assert column_types(analytics, "measures")["n"] == "bigint"
    assert rows(analytics, MEASURES) == [
        (DAY1, -32768, "rerun", 0.25, "-0.01"),
        (DAY2, 9000000000, "a longer name", 0.1, "123456789012.34"),
    ]
    assert [row["order_id"] for row in analytics.exported(DAY1)] == [1, 1]


@pytest.mark.parametrize(
    ("before", "after"), [("text", "integer"), ("bigint", "smallint"), ("numeric(14,2)", "numeric(12,2)")]
)
def test_any_other_type_change_is_refused_in_one_line_naming_both_types_and_the_migrate_command(
    analytics: Analytics, before: str, after: str
) -> None:
    publish(analytics, DAY1, orders(1), measures({"id": "integer", "n": before}, "1,7"))
    analytics.meltano_ok("lfs-to-analytics", day=DAY1)
    publish(analytics, DAY2, orders(1), measures({"id": "integer", "n": after}, "1,8"))

    result = analytics.meltano("lfs-to-analytics", day=DAY2)

    assert result.returncode != 0
    shown = {"integer": "integer", "smallint": "smallint", "text": "text", "bigint": "bigint"}
    refusal = (
        f"pipeline publish-analytics failed: refused to publish {DAY2}: table 'postgres'.'measures', column 'n': "
        f"the source now has type {shown.get(after, after)}, the analytics table {shown.get(before, before)}, "
        "which is no lossless widening; migrate the analytics table (every day's values converted): "
        f".venv/bin/meltano invoke pipeline migrate --date {DAY2} --schema postgres --table measures\n"
    )
    assert refusal in result.stderr
    assert rows(analytics, "SELECT DISTINCT pipeline_date::text FROM postgres.measures") == [(DAY1,)]
    assert column_types(analytics, "measures")["n"] == before


def test_the_migrate_command_converts_every_day_then_the_day_and_earlier_days_run(analytics: Analytics) -> None:
    migrate = refused_change(analytics, "text", ["1,41", "2,"])

    output = migrate_ok(analytics, migrate)

    assert "migrate 'postgres'.'measures': column 'n' text -> integer" in output
    assert f"now run the day: PIPELINE_DATE={DAY2} .venv/bin/meltano run lfs-to-analytics" in output
    assert column_types(analytics, "measures")["n"] == "integer"
    assert rows(analytics, "SELECT pipeline_date::text, id, n FROM postgres.measures ORDER BY 1, 2") == [
        (DAY1, 1, 41),
        (DAY1, 2, None),
    ]
    analytics.meltano_ok("lfs-to-analytics", day=DAY2)
    # An earlier day rerun after the migration: its file still declares text, its load converts it.
    publish(analytics, DAY1, orders(1), measures({"id": "integer", "n": "text"}, "1,40"))
    assert loaded_types(analytics, DAY1, "measures")["n"] == "integer"
    analytics.meltano_ok("lfs-to-analytics", day=DAY1)
    assert rows(analytics, "SELECT pipeline_date::text, id, n FROM postgres.measures ORDER BY 1, 2") == [
        (DAY1, 1, 40),
        (DAY2, 1, 42),
    ]


def test_the_migrate_command_refuses_naming_the_first_value_that_does_not_convert_until_it_is_corrected(
    analytics: Analytics,
) -> None:
    migrate = refused_change(analytics, "text", ["1,7", "2,seven", "3,8"])

    result = analytics.invoke(*migrate)

    assert result.returncode != 0
    assert (
        "pipeline migrate failed: migrate 'postgres'.'measures', column 'n' from text to integer refused: value "
        f"'seven' of {DAY1} does not convert (invalid input syntax for type integer: \"seven\"); nothing changed"
    ) in result.stderr
    assert column_types(analytics, "measures")["n"] == "text"
    assert rows(analytics, "SELECT id, n FROM postgres.measures ORDER BY 1") == [(1, "7"), (2, "seven"), (3, "8")]

    # Corrected at the source and its day rerun, the migration passes and the day runs.
    publish(analytics, DAY1, orders(1), measures({"id": "integer", "n": "text"}, "1,7", "2,9", "3,8"))
    analytics.meltano_ok("lfs-to-analytics", day=DAY1)
    migrate_ok(analytics, migrate)
    analytics.meltano_ok("lfs-to-analytics", day=DAY2)
    assert rows(analytics, "SELECT pipeline_date::text, id, n FROM postgres.measures ORDER BY 1, 2") == [
        (DAY1, 1, 7),
        (DAY1, 2, 9),
        (DAY1, 3, 8),
        (DAY2, 1, 42),
    ]


def test_the_migrate_command_waits_for_a_publish_and_gives_up_after_lock_timeout(analytics: Analytics) -> None:
    migrate = refused_change(analytics, "text", ["1,7"])

    with analytics.connect() as publishing:
        publishing.execute("SELECT pg_advisory_lock(%s)", (PUBLISH_LOCK,))  # as a publish of any day holds it
        result = analytics.invoke(*migrate, PIPELINE_LOCK_TIMEOUT="300ms")

    assert result.returncode != 0
    assert f"migrate of {dt.date.fromisoformat(DAY2)}: a table was locked by another session" in result.stderr
    assert column_types(analytics, "measures")["n"] == "text"


def test_the_migrate_command_refuses_a_change_postgresql_cannot_convert(analytics: Analytics) -> None:
    migrate = refused_change(analytics, "date", ["1,2024-01-01"])

    result = analytics.invoke(*migrate)

    assert result.returncode != 0
    assert (
        "pipeline migrate failed: migrate 'postgres'.'measures', column 'n' from date to integer refused: "
        "PostgreSQL has no such conversion (cannot cast type date to integer); nothing changed"
    ) in result.stderr
    assert column_types(analytics, "measures")["n"] == "date"
