"""The day-folder contract: staging, publishing, receipts and the step-2 gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.lfs import (
    TableFile,
    day_folder,
    publish_staged_day,
    read_day,
    receipt_path,
    sha256_file,
    staging_root,
    write_folder_metadata,
)

DAY = "2024-01-02"
SCHEMA = {"type": "object", "properties": {"id": {"type": ["integer"], "x-sql-datatype": "smallint"}}}


def stage_table(data_dir: Path, job: str, folder: str, table: str, body: str) -> Path:
    """Write one table as a step-1 loader would, under the job's staging root."""
    target = staging_root(data_dir, job, DAY) / folder
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{table}.csv"
    path.write_text(body)
    rows = body.count("\n") - 1
    write_folder_metadata(target, [TableFile(table, path, rows, sha256_file(path), SCHEMA, ["id"])])
    return path


def test_day_folder_requires_a_date_placeholder() -> None:
    assert day_folder("postgres/{table}/{date}", "orders", DAY) == f"postgres/orders/{DAY}"
    with pytest.raises(PipelineError, match="has no"):
        day_folder("postgres/{table}", "orders", DAY)


def test_publish_moves_folders_and_writes_a_deterministic_receipt(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"src/orders/{DAY}", "orders", "id\n1\n2\n")
    receipt = publish_staged_day(tmp_path, "job-a", DAY)

    published = tmp_path / "src" / "orders" / DAY
    assert sorted(p.name for p in published.iterdir()) == ["_SUCCESS", "_manifest.json", "_schema.json", "orders.csv"]
    assert receipt["tables"]["orders"]["rows"] == 2
    assert json.loads(receipt_path(tmp_path, "job-a", DAY).read_text()) == receipt
    assert not staging_root(tmp_path, "job-a", DAY).exists()


def test_republishing_replaces_the_folder_whole(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"src/orders/{DAY}", "orders", "id\n1\n2\n")
    publish_staged_day(tmp_path, "job-a", DAY)
    (tmp_path / "src" / "orders" / DAY / "stray.csv").write_text("left over\n")

    stage_table(tmp_path, "job-a", f"src/orders/{DAY}", "orders", "id\n3\n")
    publish_staged_day(tmp_path, "job-a", DAY)

    folder = tmp_path / "src" / "orders" / DAY
    assert (folder / "orders.csv").read_text() == "id\n3\n"
    assert not (folder / "stray.csv").exists()


def test_publish_refuses_when_nothing_was_staged(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"nothing staged .* PIPELINE_DATE=2024-01-02 .venv/bin/meltano run job-a"):
        publish_staged_day(tmp_path, "job-a", DAY)


def test_a_folder_without_success_marker_is_not_published(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"src/orders/{DAY}", "orders", "id\n1\n")
    half = staging_root(tmp_path, "job-a", DAY) / f"src/customers/{DAY}"
    half.mkdir(parents=True)
    (half / "customers.csv").write_text("id\n")

    receipt = publish_staged_day(tmp_path, "job-a", DAY)
    assert set(receipt["tables"]) == {"orders"}
    assert not (tmp_path / "src" / "customers").exists()


def test_read_day_names_the_job_that_did_not_succeed(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    publish_staged_day(tmp_path, "job-a", DAY)
    with pytest.raises(PipelineError) as failure:
        read_day(tmp_path, DAY, ["job-a", "job-b"])
    message = str(failure.value)
    assert "job-b has not succeeded for 2024-01-02" in message
    assert "PIPELINE_DATE=2024-01-02 .venv/bin/meltano run job-b" in message
    assert "\n" not in message


def test_read_day_returns_the_tables_of_all_jobs(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    stage_table(tmp_path, "job-b", f"b/{DAY}", "order_details", "id\n1\n2\n")
    publish_staged_day(tmp_path, "job-a", DAY)
    publish_staged_day(tmp_path, "job-b", DAY)

    tables = {t.table: t for t in read_day(tmp_path, DAY, ["job-a", "job-b"])}
    assert set(tables) == {"orders", "order_details"}
    assert tables["order_details"].rows == 2
    assert tables["orders"].schema == SCHEMA
    assert tables["orders"].key_properties == ["id"]


def test_read_day_refuses_a_folder_that_no_longer_matches_its_receipt(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    publish_staged_day(tmp_path, "job-a", DAY)
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n2\n")
    # Simulate a crash after the folder swap but with the old receipt still present.
    old_receipt = receipt_path(tmp_path, "job-a", DAY).read_text()
    publish_staged_day(tmp_path, "job-a", DAY)
    receipt_path(tmp_path, "job-a", DAY).write_text(old_receipt)

    with pytest.raises(PipelineError, match="no longer matches the receipt"):
        read_day(tmp_path, DAY, ["job-a"])


def test_read_day_refuses_the_same_table_from_two_jobs(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    stage_table(tmp_path, "job-b", f"b/{DAY}", "orders", "id\n1\n")
    publish_staged_day(tmp_path, "job-a", DAY)
    publish_staged_day(tmp_path, "job-b", DAY)
    with pytest.raises(PipelineError, match="comes from two jobs"):
        read_day(tmp_path, DAY, ["job-a", "job-b"])
