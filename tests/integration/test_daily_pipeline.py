"""A whole day through the three real Meltano jobs, on throwaway copies of the sources.

The tests of this module share one pipeline and build on each other's days, in
order: a first day end to end, its rerun, a second day beside it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from pipeline.databases import ANALYTICS, SOURCE
from tests.conftest import Pipeline

pytestmark = pytest.mark.integration

DAY1, DAY2 = "2024-01-02", "2024-01-03"
TABLE_MD5 = "md5(string_agg(t::text, '|' ORDER BY t::text))"
META_FILES = ["_SUCCESS", "_manifest.json", "_schema.json"]
JOBS = ("postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics")
ORDER_COLUMNS = (
    "order_id, customer_id, employee_id, order_date, required_date, shipped_date, ship_via, freight, ship_name, "
    "ship_address, ship_city, ship_region, ship_postal_code, ship_country"
)


def run_day(pipeline: Pipeline, day: str) -> None:
    for job in JOBS:
        pipeline.run_ok(job, day=day)


def source_tables(pipeline: Pipeline) -> list[str]:
    with pipeline.connect(SOURCE) as conn:
        return [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
            )
        ]


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> sha256)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def analytics_digest(pipeline: Pipeline) -> dict[str, str]:
    """Each analytics table's full content, as an md5 of its ordered rows."""
    with pipeline.connect(ANALYTICS) as conn:
        tables = conn.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('postgres', 'csv')")
        return {
            f"{schema}.{table}": conn.execute(f"SELECT {TABLE_MD5} FROM {schema}.{table} t").fetchone()[0]
            for schema, table in tables.fetchall()
        }


def expected_result(pipeline: Pipeline, details_csv: Path, day: str) -> list[dict]:
    """The challenge's join computed straight from the sources, without the pipeline."""
    with pipeline.connect(SOURCE) as conn:
        orders = {
            row["order_id"]: row
            for (row,) in conn.execute(f"SELECT row_to_json(o) FROM (SELECT {ORDER_COLUMNS} FROM orders) o")
        }
    expected = []
    with details_csv.open(newline="") as handle:
        for detail in csv.DictReader(handle):
            order = orders.get(int(detail["order_id"]))
            if order is None:
                continue
            expected.append(
                {
                    "pipeline_date": day,
                    **order,
                    "product_id": int(detail["product_id"]),
                    "unit_price": float(detail["unit_price"]),
                    "quantity": int(detail["quantity"]),
                    "discount": float(detail["discount"]),
                }
            )
    return sorted(expected, key=lambda r: (r["order_id"], r["product_id"]))


@pytest.fixture(scope="module")
def first_day(shared_pipeline: Pipeline) -> Pipeline:
    run_day(shared_pipeline, DAY1)
    return shared_pipeline


def test_step1_writes_every_source_table_and_the_csv_per_day(first_day: Pipeline) -> None:
    data = first_day.data_dir
    tables = source_tables(first_day)
    assert len(tables) == 13
    for table in tables:
        folder = data / "postgres" / table / DAY1
        assert sorted(p.name for p in folder.iterdir()) == [
            "_SUCCESS",
            "_manifest.json",
            "_schema.json",
            f"{table}.csv",
        ]
    assert sorted(p.name for p in (data / "csv" / DAY1).iterdir()) == [*META_FILES, "order_details.csv"]
    manifest = json.loads((data / "csv" / DAY1 / "_manifest.json").read_text())
    assert manifest["tables"]["order_details"]["rows"] == 2155


def test_empty_source_tables_give_header_only_files_and_empty_typed_tables(first_day: Pipeline) -> None:
    path = first_day.data_dir / "postgres" / "customer_demographics" / DAY1 / "customer_demographics.csv"
    assert path.read_text() == "customer_type_id,customer_desc\n"
    with first_day.connect(ANALYTICS) as conn:
        assert conn.execute("SELECT count(*) FROM postgres.customer_demographics").fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('postgres.customer_customer_demo')").fetchone() != (None,)


def test_analytics_tables_have_the_source_types(first_day: Pipeline) -> None:
    query = (
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "AND a.attname <> 'pipeline_date' ORDER BY 1, 2"
    )
    with first_day.connect(SOURCE) as conn:
        source = conn.execute(query, ("public", "r")).fetchall()
    with first_day.connect(ANALYTICS) as conn:
        analytics = conn.execute(query, ("postgres", "p")).fetchall()
        csv_types = conn.execute(query, ("csv", "p")).fetchall()
    assert analytics == source
    assert csv_types == [
        ("order_details", "discount", "real"),
        ("order_details", "order_id", "smallint"),
        ("order_details", "product_id", "smallint"),
        ("order_details", "quantity", "smallint"),
        ("order_details", "unit_price", "real"),
    ]


def test_every_value_survives_including_bytea(first_day: Pipeline) -> None:
    for table in source_tables(first_day):
        with first_day.connect(SOURCE) as conn:
            source = conn.execute(f"SELECT {TABLE_MD5} FROM (SELECT * FROM {table}) t").fetchone()
            names = [d.name for d in conn.execute(f"SELECT * FROM {table} WHERE false").description]
        with first_day.connect(ANALYTICS) as conn:
            analytics = conn.execute(
                f"SELECT {TABLE_MD5} FROM (SELECT {', '.join(names)} FROM postgres.{table} WHERE pipeline_date = %s) t",
                (dt.date.fromisoformat(DAY1),),
            ).fetchone()
        assert analytics == source, table


def test_the_result_equals_the_join_computed_from_the_sources(first_day: Pipeline, source_files: dict) -> None:
    results = first_day.data_dir / "results" / DAY1
    exported = json.loads((results / "orders_with_details.json").read_text())
    assert exported == expected_result(first_day, source_files["order_details.csv"], DAY1)
    with (results / "orders_with_details.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(exported) == 2155
    assert list(rows[0]) == list(exported[0])
    with first_day.connect(ANALYTICS) as conn:
        in_view = conn.execute(
            "SELECT count(*) FROM pipeline.orders_with_details WHERE pipeline_date = %s", (DAY1,)
        ).fetchone()
    assert in_view == (2155,)


def test_rerunning_a_day_changes_nothing(first_day: Pipeline) -> None:
    files, tables = tree_digest(first_day.data_dir), analytics_digest(first_day)
    run_day(first_day, DAY1)
    assert tree_digest(first_day.data_dir) == files
    assert analytics_digest(first_day) == tables


def test_two_days_are_kept_apart(first_day: Pipeline) -> None:
    before = tree_digest(first_day.data_dir)
    run_day(first_day, DAY2)
    after = tree_digest(first_day.data_dir)
    assert {k: v for k, v in after.items() if DAY2 not in k} == before
    with first_day.connect(ANALYTICS) as conn:
        per_day = conn.execute(
            "SELECT pipeline_date::text, count(*) FROM postgres.orders GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert per_day == [(DAY1, 830), (DAY2, 830)]
    assert (first_day.data_dir / "results" / DAY2 / "orders_with_details.json").is_file()
