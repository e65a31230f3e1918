"""The day-folder contract: staging, publishing, receipts and the step-2 gate."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pipeline.core.errors import PipelineError, TransientPipelineError
from pipeline.core.files import sha256_file
from pipeline.core.names import encode_name
from pipeline.days.folder import TableFile, write_folder_metadata
from pipeline.days.layout import LEFT_OUT_FILE, data_file_name, day_folder, receipt_path, staging_root
from pipeline.days.publish import publish_staged_day
from pipeline.days.receipts import read_day
from tests.conftest import unfenced

DAY = dt.date(2024, 1, 2)
SCHEMA = {"type": "object", "properties": {"id": {"type": ["integer"], "x-sql-datatype": "smallint"}}}


def stage_table(data_dir: Path, job: str, folder: str, table: str, body: str, source: str = "postgres") -> Path:
    """Write one table as a step-1 loader would, under the job's staging root."""
    target = staging_root(data_dir, job, DAY) / folder
    target.mkdir(parents=True, exist_ok=True)
    key = encode_name(table)
    path = target / data_file_name(key)
    path.write_text(body)
    rows = body.count("\n") - 1
    source_schema = "public" if source == "postgres" else None
    described = TableFile(key, source, source_schema, table, path, rows, sha256_file(path), SCHEMA, ["id"])
    write_folder_metadata(target, [described])
    return path


def test_day_folder_requires_a_date_placeholder() -> None:
    assert day_folder("postgres/{table}/{date}", "orders", DAY) == f"postgres/orders/{DAY}"
    with pytest.raises(PipelineError, match="has no"):
        day_folder("postgres/{table}", "orders", DAY)


def test_publish_moves_folders_and_writes_a_deterministic_receipt(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"src/orders/{DAY}", "orders", "id\n1\n2\n")
    receipt = publish_staged_day(tmp_path, "job-a", DAY, unfenced)

    published = tmp_path / "src" / "orders" / DAY.isoformat()
    assert sorted(p.name for p in published.iterdir()) == ["_SUCCESS", "_manifest.json", "_schema.json", "orders.csv"]
    assert receipt["tables"]["orders"]["rows"] == 2
    assert json.loads(receipt_path(tmp_path, "job-a", DAY).read_text()) == receipt
    assert not staging_root(tmp_path, "job-a", DAY).exists()


def test_republishing_replaces_the_folder_whole(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"src/orders/{DAY}", "orders", "id\n1\n2\n")
    publish_staged_day(tmp_path, "job-a", DAY, unfenced)
    (tmp_path / "src" / "orders" / DAY.isoformat() / "stray.csv").write_text("left over\n")

    stage_table(tmp_path, "job-a", f"src/orders/{DAY}", "orders", "id\n3\n")
    publish_staged_day(tmp_path, "job-a", DAY, unfenced)

    folder = tmp_path / "src" / "orders" / DAY.isoformat()
    assert (folder / "orders.csv").read_text() == "id\n3\n"
    assert not (folder / "stray.csv").exists()


def test_publish_refuses_when_nothing_was_staged(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"nothing staged .* PIPELINE_DATE=2024-01-02 .venv/bin/meltano run job-a"):
        publish_staged_day(tmp_path, "job-a", DAY, unfenced)


def test_a_folder_without_success_marker_is_not_published(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"src/orders/{DAY}", "orders", "id\n1\n")
    half = staging_root(tmp_path, "job-a", DAY) / f"src/customers/{DAY}"
    half.mkdir(parents=True)
    (half / "customers.csv").write_text("id\n")

    receipt = publish_staged_day(tmp_path, "job-a", DAY, unfenced)
    assert set(receipt["tables"]) == {"orders"}
    assert not (tmp_path / "src" / "customers").exists()


def test_read_day_names_the_job_that_did_not_succeed(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    publish_staged_day(tmp_path, "job-a", DAY, unfenced)
    with pytest.raises(PipelineError) as failure:
        read_day(tmp_path, DAY, ["job-a", "job-b"])
    message = str(failure.value)
    assert "job-b has not succeeded for 2024-01-02" in message
    assert "PIPELINE_DATE=2024-01-02 .venv/bin/meltano run job-b" in message
    assert "\n" not in message


def test_read_day_returns_the_tables_of_all_jobs(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    stage_table(tmp_path, "job-b", f"b/{DAY}", "order_details", "id\n1\n2\n")
    publish_staged_day(tmp_path, "job-a", DAY, unfenced)
    publish_staged_day(tmp_path, "job-b", DAY, unfenced)

    tables = {t.table: t for t in read_day(tmp_path, DAY, ["job-a", "job-b"])}
    assert set(tables) == {"orders", "order_details"}
    assert tables["order_details"].rows == 2
    assert tables["orders"].schema == SCHEMA
    assert tables["orders"].key_properties == ["id"]


def test_read_day_refuses_a_folder_that_no_longer_matches_its_receipt(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    publish_staged_day(tmp_path, "job-a", DAY, unfenced)
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n2\n")
    # Simulate a crash after the folder swap but with the old receipt still present.
    old_receipt = receipt_path(tmp_path, "job-a", DAY).read_text()
    publish_staged_day(tmp_path, "job-a", DAY, unfenced)
    receipt_path(tmp_path, "job-a", DAY).write_text(old_receipt)

    with pytest.raises(PipelineError, match="no longer matches the receipt"):
        read_day(tmp_path, DAY, ["job-a"])


def test_a_damaged_day_is_a_permanent_refusal(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    publish_staged_day(tmp_path, "job-a", DAY, unfenced)
    (tmp_path / "a" / DAY.isoformat() / "_manifest.json").write_text("{}")

    with pytest.raises(PipelineError, match="no longer matches the receipt") as refused:
        read_day(tmp_path, DAY, ["job-a"])
    assert not isinstance(refused.value, TransientPipelineError)


def test_a_day_step1_is_publishing_again_is_a_transient_refusal(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    publish_staged_day(tmp_path, "job-a", DAY, unfenced)
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n2\n")  # the rerun's loader is writing
    receipt_path(tmp_path, "job-a", DAY).unlink()  # its publish has moved the receipt into the history

    with pytest.raises(TransientPipelineError, match=r"no .*; but job-a is writing the day now, or was cut short"):
        read_day(tmp_path, DAY, ["job-a"])


def test_a_never_published_day_is_a_permanent_refusal(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="job-a has not succeeded") as refused:
        read_day(tmp_path, DAY, ["job-a"])
    assert not isinstance(refused.value, TransientPipelineError)


def test_read_day_refuses_the_same_table_of_one_source_from_two_jobs(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    stage_table(tmp_path, "job-b", f"b/{DAY}", "orders", "id\n1\n")
    publish_staged_day(tmp_path, "job-a", DAY, unfenced)
    publish_staged_day(tmp_path, "job-b", DAY, unfenced)
    with pytest.raises(PipelineError, match="comes from two jobs"):
        read_day(tmp_path, DAY, ["job-a", "job-b"])


def test_two_sources_may_each_have_a_table_of_the_same_name(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"a/order_details/{DAY}", "order_details", "id\n1\n")
    stage_table(tmp_path, "job-b", f"b/{DAY}", "order_details", "id\n1\n2\n", source="csv")
    publish_staged_day(tmp_path, "job-a", DAY, unfenced)
    publish_staged_day(tmp_path, "job-b", DAY, unfenced)
    tables = {t.source: t for t in read_day(tmp_path, DAY, ["job-a", "job-b"])}
    assert (tables["postgres"].rows, tables["csv"].rows) == (1, 2)
    assert (tables["postgres"].source_schema, tables["csv"].source_schema) == ("public", None)


def test_metadata_is_keyed_by_folder_name_and_keeps_the_exact_names(tmp_path: Path) -> None:
    table = 'Odd "name"/../x'
    path = stage_table(tmp_path, "job-a", f"a/{encode_name(table)}/{DAY}", table, "id\n1\n")
    assert path.name == "%4fdd%20%22name%22%2f%2e%2e%2fx.csv"
    publish_staged_day(tmp_path, "job-a", DAY, unfenced)

    folder = tmp_path / "a" / encode_name(table) / DAY.isoformat()
    schema = json.loads((folder / "_schema.json").read_text())["tables"]
    assert schema == {
        encode_name(table): {
            "source": "postgres",
            "source_schema": "public",
            "table": table,
            "key_properties": ["id"],
            "schema": SCHEMA,
        }
    }
    [read] = read_day(tmp_path, DAY, ["job-a"])
    assert (read.key, read.table, read.path) == (encode_name(table), table, folder / path.name)


@pytest.mark.parametrize("metadata", ["_schema.json", "_manifest.json"])
def test_read_day_refuses_a_changed_metadata_file(tmp_path: Path, metadata: str) -> None:
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    publish_staged_day(tmp_path, "job-a", DAY, unfenced)
    path = tmp_path / "a" / DAY.isoformat() / metadata
    # the same content, formatted differently: still not the file the receipt covers
    path.write_text(json.dumps(json.loads(path.read_text())))
    with pytest.raises(PipelineError, match=r"metadata no longer matches the receipt .* rerun: PIPELINE_DATE=2024"):
        read_day(tmp_path, DAY, ["job-a"])


def test_the_receipt_covers_each_folders_metadata(tmp_path: Path) -> None:
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    receipt = publish_staged_day(tmp_path, "job-a", DAY, unfenced)
    folder = tmp_path / "a" / DAY.isoformat()
    assert receipt["folders"] == {
        f"a/{DAY}": {name: sha256_file(folder / name) for name in ("_schema.json", "_manifest.json")}
    }
    assert receipt["tables"]["orders"]["folder"] == f"a/{DAY}"


def test_a_file_name_longer_than_the_file_system_allows_is_refused() -> None:
    assert data_file_name("a" * 251) == "a" * 251 + ".csv"
    with pytest.raises(PipelineError, match="more than the file system's 255; rename the table"):
        data_file_name("a" * 252)


def test_the_receipt_names_the_tables_the_loader_staged_as_left_out_and_none_without(tmp_path: Path) -> None:
    left_out = [{"source_schema": "public", "table": "a.b-c", "reason": '"selected": false in setting tables'}]
    stage_table(tmp_path, "job-a", f"a/{DAY}", "orders", "id\n1\n")
    (staging_root(tmp_path, "job-a", DAY) / LEFT_OUT_FILE).write_text(json.dumps(left_out))
    stage_table(tmp_path, "job-b", f"b/{DAY}", "orders", "id\n1\n")

    assert publish_staged_day(tmp_path, "job-a", DAY, unfenced)["left_out"] == left_out
    assert publish_staged_day(tmp_path, "job-b", DAY, unfenced)["left_out"] == []
    assert json.loads(receipt_path(tmp_path, "job-a", DAY).read_text())["left_out"] == left_out
