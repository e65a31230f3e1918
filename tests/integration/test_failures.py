"""Failures of the real jobs: each says clearly what failed and leaves nothing half-written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipeline.core.connections import ANALYTICS, SOURCE
from tests.conftest import PROJECT_ROOT, Pipeline

pytestmark = pytest.mark.integration

DAY = "2024-02-01"


def published(pipeline: Pipeline) -> list[str]:
    """Everything a later step could read: published folders, receipts and results."""
    data = pipeline.data_dir
    if not data.exists():
        return []
    return sorted(
        str(p.relative_to(data)) for p in data.rglob("*") if p.is_file() and ".staging" not in p.relative_to(data).parts
    )


def analytics_tables(pipeline: Pipeline) -> list[tuple]:
    with pipeline.connect(ANALYTICS) as conn:
        return conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()


def test_step2_refuses_a_day_without_both_step1_jobs(pipeline: Pipeline) -> None:
    pipeline.run_ok("csv-to-lfs", day=DAY)
    before = analytics_tables(pipeline)

    result = pipeline.run("lfs-to-analytics", day=DAY)

    assert result.returncode != 0
    assert "postgres-to-lfs has not succeeded for 2024-02-01" in result.stderr
    assert f"PIPELINE_DATE={DAY} .venv/bin/meltano run postgres-to-lfs" in result.stderr
    assert not (pipeline.data_dir / "results").exists()
    # The loader may have created the project's bookkeeping (schema pipeline); no source table changed.
    assert [t for t in analytics_tables(pipeline) if t[0] != "pipeline"] == [t for t in before if t[0] != "pipeline"]


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda text: text.replace("10248,42,9.8,10,0", "10248,42,9.8,10"), "line 3"),
        (lambda text: text.replace("10248,42,9.8,10,0", "10248,42,9.8,ten,0"), "line 3"),
        (lambda text: text.replace(",discount", "", 1), "discount"),
        (
            lambda text: text.replace("10248,42,9.8,10,0", "10248,42,9.8,40000,0"),
            "line 3: column 'quantity': '40000' is out of range for smallint",
        ),
    ],
    ids=["ragged-row", "non-numeric-quantity", "missing-column", "smallint-out-of-range"],
)
def test_bad_csv_fails_naming_file_and_line_and_publishes_nothing(
    pipeline: Pipeline, source_files: dict, tmp_path: Path, mangle, message: str
) -> None:
    bad = tmp_path / "bad_order_details.csv"
    bad.write_text(mangle(source_files["order_details.csv"].read_text()))

    result = pipeline.run("csv-to-lfs", day=DAY, ORDER_DETAILS_CSV=str(bad))

    assert result.returncode != 0
    assert "bad_order_details.csv" in result.stderr
    assert message in result.stderr
    assert published(pipeline) == []


def test_a_failed_rerun_keeps_the_previous_good_day(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.run_ok("csv-to-lfs", day=DAY)
    before = published(pipeline)
    bad = tmp_path / "bad.csv"
    bad.write_text("order_id,product_id,unit_price,quantity,discount\n1,2,3\n")

    assert pipeline.run("csv-to-lfs", day=DAY, ORDER_DETAILS_CSV=str(bad)).returncode != 0
    assert published(pipeline) == before


def test_unreachable_source_fails_clearly(pipeline: Pipeline) -> None:
    result = pipeline.run("postgres-to-lfs", day=DAY, TAP_POSTGRES_PORT="1")

    assert result.returncode != 0
    assert "tap-postgres-native: cannot reach the source database" in result.stderr
    assert pipeline.env["TAP_POSTGRES_HOST"] in result.stderr  # the error names the server
    assert "Traceback" not in result.stderr
    assert published(pipeline) == []


def test_unreachable_analytics_database_fails_clearly_and_changes_nothing(pipeline: Pipeline) -> None:
    pipeline.run_ok("postgres-to-lfs", day=DAY)
    pipeline.run_ok("csv-to-lfs", day=DAY)
    before = published(pipeline)
    # Step 1's claims are recorded in the analytics database (pipeline.run_claims): no source table yet.
    tables_before = analytics_tables(pipeline)
    assert {schema for schema, _ in tables_before} == {"pipeline"}

    result = pipeline.run("lfs-to-analytics", day=DAY, TARGET_POSTGRES_PORT="1")

    assert result.returncode != 0
    assert "cannot reach the analytics database" in result.stderr
    assert published(pipeline) == before
    assert analytics_tables(pipeline) == tables_before


@pytest.mark.parametrize("day", [None, "", "2024-13-01"])
@pytest.mark.parametrize("job", ["postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics"])
def test_a_missing_or_malformed_day_is_refused_before_writing(pipeline: Pipeline, job: str, day: str | None) -> None:
    result = pipeline.run(job, day=day)

    assert result.returncode != 0
    assert "PIPELINE_DATE" in result.stderr
    assert not pipeline.data_dir.exists() or published(pipeline) == []


def test_a_table_added_to_the_source_is_extracted_without_a_code_change(pipeline: Pipeline) -> None:
    with pipeline.connect(SOURCE) as conn:
        conn.execute("CREATE TABLE warehouses (warehouse_id integer PRIMARY KEY, opened date, active boolean)")
        conn.execute("INSERT INTO warehouses VALUES (1, '2024-01-01', true), (2, NULL, false)")
        conn.execute("CREATE VIEW active_warehouses AS SELECT * FROM warehouses WHERE active")

    pipeline.run_ok("postgres-to-lfs", day=DAY)

    assert (pipeline.data_dir / "postgres" / "warehouses" / DAY / "warehouses.csv").read_text() == (
        "warehouse_id,opened,active\n1,2024-01-01,true\n2,,false\n"
    )
    assert not (pipeline.data_dir / "postgres" / "active_warehouses").exists()


def test_a_table_dropped_at_the_source_leaves_the_rerun_day(pipeline: Pipeline) -> None:
    jobs = ("postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics")
    for job in jobs:
        pipeline.run_ok(job, day=DAY)
    with pipeline.connect(SOURCE) as conn:
        conn.execute("DROP TABLE us_states")
    for job in jobs:
        pipeline.run_ok(job, day=DAY)

    receipt = json.loads((pipeline.data_dir / "_runs" / "postgres-to-lfs" / f"{DAY}.json").read_text())
    assert "us_states" not in receipt["tables"]
    with pipeline.connect(ANALYTICS) as conn:
        assert conn.execute("SELECT count(*) FROM postgres.us_states").fetchone() == (0,)


def test_make_run_ends_a_failed_day_with_its_cause_in_one_line(
    pipeline: Pipeline, source_files: dict, tmp_path: Path
) -> None:
    bad = tmp_path / "bad_order_details.csv"
    bad.write_text(source_files["order_details.csv"].read_text().replace("10248,42,9.8,10,0", "10248,42,9.8,10"))

    result = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "run_day.sh"), DAY],
        cwd=PROJECT_ROOT,
        env={**pipeline.env, "ORDER_DETAILS_CSV": str(bad)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 1
    failed, rerun = result.stderr.splitlines()[-2:]
    # The cause as the component recorded it (the Airflow task log's CAUSE: line), not "see above".
    assert failed.startswith(f"FAILED: step csv-to-lfs for {DAY}: tap-typed-csv: "), failed
    assert "bad_order_details.csv" in failed
    assert "line 3" in failed
    assert failed.endswith("(permanent: fix it, then rerun)")
    assert rerun.startswith(f"  rerun it with: PIPELINE_DATE={DAY} .venv/bin/meltano run csv-to-lfs ")
