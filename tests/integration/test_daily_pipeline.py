"""A whole day through the three real Meltano jobs, on throwaway copies of the sources.

The tests of this module share one pipeline and build on each other's days, in
order: a first day end to end, its rerun, a second day beside it. They run twice:
with ``DATA_DIR`` on local disk, and in a bucket of the tests' S3 server (SeaweedFS,
``tests.s3server``), where every job reads and writes objects and step 2 finds them
through the receipts.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.core.connections import ANALYTICS, SOURCE
from pipeline.core.errors import FAILURE_FILE_ENV
from pipeline.core.store import is_object_store, sha256_of
from pipeline.days.folder import TableFile
from pipeline.days.receipts import read_day
from pipeline.warehouse.results import RESULT_RECEIPT, day_results, result_files
from tests.conftest import Pipeline, make_pipeline
from tests.s3server import free_ports

pytestmark = pytest.mark.integration

DAY1, DAY2 = "2024-01-02", "2024-01-03"
TABLE_MD5 = "md5(string_agg(t::text, '|' ORDER BY t::text))"
JOBS = ("postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics")
RESULT_NAMES = ["orders_with_details.csv", "orders_with_details.json"]
ORDER_COLUMNS = (
    "order_id, customer_id, employee_id, order_date, required_date, shipped_date, ship_via, freight, ship_name, "
    "ship_address, ship_city, ship_region, ship_postal_code, ship_country"
)


@pytest.fixture(scope="module", params=["local", "s3"])
def day_pipeline(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, source_files: dict[str, Path]
) -> Iterator[Pipeline]:
    """The module's pipeline, its DATA_DIR on local disk or under a fresh prefix of the tests' bucket."""
    data_dir: Path | str = tmp_path_factory.mktemp("pipeline") / "data"
    extra_env = None
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        data_dir, extra_env = server.data_dir(), server.env()
    yield from make_pipeline(
        data_dir, source_files["northwind.sql"], source_files["order_details.csv"], extra_env=extra_env
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
    """Every file or object under ``root`` (relative path or key -> sha256)."""
    if is_object_store(root):
        fs, base = root.fs, root.path.rstrip("/")
        return {key.removeprefix(base + "/"): hashlib.sha256(fs.cat_file(key)).hexdigest() for key in fs.find(base)}
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def day_tables(pipeline: Pipeline, day: str, job: str) -> dict[str, TableFile]:
    """The tables ``job``'s receipt lists for ``day``, by key, found as step 2 finds them."""
    return {table.key: table for table in read_day(pipeline.data_dir, dt.date.fromisoformat(day), [job])}


def relative(pipeline: Pipeline, path: Path) -> str:
    """``path`` relative to the pipeline's DATA_DIR (a key's tail on object storage)."""
    return str(path).removeprefix(str(pipeline.data_dir).rstrip("/") + "/")


def results(pipeline: Pipeline, day: str) -> dict[str, Path]:
    """The day's published result files (through the result receipt on object storage)."""
    found = result_files(pipeline.data_dir, dt.date.fromisoformat(day), RESULT_NAMES)
    assert found is not None, f"no result for {day}"
    return found


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
def first_day(day_pipeline: Pipeline) -> Pipeline:
    run_day(day_pipeline, DAY1)
    return day_pipeline


def test_step1_writes_every_source_table_and_the_csv_per_day(first_day: Pipeline) -> None:
    tables = source_tables(first_day)
    assert len(tables) == 13
    published = day_tables(first_day, DAY1, "postgres-to-lfs")
    assert sorted(published) == tables
    for table in tables:
        path = published[table].path
        assert path.name == f"{table}.csv"
        assert relative(first_day, path.parent).startswith(f"postgres/{table}/{DAY1}")
        names = sorted(p.name for p in path.parent.iterdir())
        if is_object_store(path):  # the run's own folder, the receipt the commit point
            assert {f"{table}.csv", "_manifest.json", "_schema.json"} <= set(names)
        else:
            assert names == ["_SUCCESS", "_manifest.json", "_schema.json", f"{table}.csv"]
    [details] = day_tables(first_day, DAY1, "csv-to-lfs").values()
    assert relative(first_day, details.path).startswith(f"csv/{DAY1}/")
    assert details.path.name == "order_details.csv"
    assert details.rows == 2155


def test_every_file_the_receipts_name_has_their_checksum(first_day: Pipeline) -> None:
    for job in ("postgres-to-lfs", "csv-to-lfs"):
        for table in day_tables(first_day, DAY1, job).values():
            assert sha256_of(table.path) == table.sha256, table.path
    exported = results(first_day, DAY1)
    if is_object_store(first_day.data_dir):
        receipt = json.loads(
            (day_results(first_day.data_dir, dt.date.fromisoformat(DAY1)) / RESULT_RECEIPT).read_text()
        )
        assert receipt["rows"] == 2155
        assert sorted(receipt["files"]) == RESULT_NAMES
        for name, path in exported.items():
            assert sha256_of(path) == receipt["files"][name]["sha256"], path
            assert relative(first_day, path) == f"{receipt['folder']}/{name}"


def test_empty_source_tables_give_header_only_files_and_empty_typed_tables(first_day: Pipeline) -> None:
    path = day_tables(first_day, DAY1, "postgres-to-lfs")["customer_demographics"].path
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
    files = results(first_day, DAY1)
    exported = json.loads(files["orders_with_details.json"].read_text())
    assert exported == expected_result(first_day, source_files["order_details.csv"], DAY1)
    with files["orders_with_details.csv"].open(newline="") as handle:
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
    assert results(first_day, DAY2)["orders_with_details.json"].is_file()


def test_step2_with_its_object_store_down_fails_as_transient_naming_it(first_day: Pipeline, tmp_path: Path) -> None:
    if not is_object_store(first_day.data_dir):
        pytest.skip("an object store's failure")
    (closed,) = free_ports(1)  # nothing listens there: every connection is refused
    endpoint = f"http://127.0.0.1:{closed}"
    failures = tmp_path / "failures.jsonl"
    result = first_day.run("lfs-to-analytics", day=DAY1, AWS_ENDPOINT_URL=endpoint, **{FAILURE_FILE_ENV: str(failures)})
    assert result.returncode != 0
    record = json.loads(failures.read_text().splitlines()[0])
    assert record["transient"] is True, record
    assert record["message"].startswith(f"object store at {endpoint} (AWS_ENDPOINT_URL) did not answer"), record
