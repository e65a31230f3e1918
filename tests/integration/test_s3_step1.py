"""Step 1 with ``DATA_DIR=s3://...`` on a real S3 server (SeaweedFS, tests/s3server.py), through real Meltano runs.

The commit protocol of ``pipeline.days.object_store``: each object written once under the run's
folder, the receipt last; an identical rerun leaves every object and the receipt as
they were; a changed rerun keeps the replaced receipt, which ``restore`` puts back;
``prune`` removes old days and what unpublished runs left; bad settings fail in one line.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.days.history import kept_versions
from pipeline.days.layout import receipt_path
from pipeline.days.receipts import read_day
from tests.analytics.days import as_date
from tests.conftest import Pipeline, make_s3_pipeline
from tests.s3server import S3Server, free_ports

pytestmark = pytest.mark.integration

DAY = "2024-03-05"
JOBS = ["postgres-to-lfs", "csv-to-lfs"]


@pytest.fixture
def s3_pipeline(s3_server: S3Server, source_files: dict[str, Path]) -> Iterator[Pipeline]:
    """A fresh pipeline whose DATA_DIR is a prefix of its own in the test server's bucket."""
    yield from make_s3_pipeline(s3_server, source_files)


def objects(server: S3Server, pipeline: Pipeline) -> dict[str, bytes]:
    """Every object of the pipeline's data dir, by key under it."""
    return server.objects(pipeline.env["DATA_DIR"])


def upload(server: S3Server, pipeline: Pipeline, name: str, data: bytes) -> str:
    """Put ``data`` in the pipeline's prefix (not a day folder) and return its URL."""
    url = f"{pipeline.env['DATA_DIR']}/inputs/{name}"
    server.filesystem().pipe_file(url.removeprefix("s3://"), data)
    return url


def test_step1_writes_the_day_to_the_bucket_and_an_identical_rerun_changes_no_object(
    s3_server: S3Server, s3_pipeline: Pipeline, source_files: dict[str, Path]
) -> None:
    for job in JOBS:
        s3_pipeline.run_ok(job, day=DAY)
    first = objects(s3_server, s3_pipeline)

    tables = {t.table: t for t in read_day(s3_pipeline.data_dir, as_date(DAY), JOBS)}
    details = source_files["order_details.csv"].read_bytes()
    assert tables["order_details"].rows == details.count(b"\n") - 1
    assert tables["orders"].rows == 830
    # Each table's objects are in one run folder inside its day folder, named by the receipt.
    receipt = json.loads(first[f"_runs/postgres-to-lfs/{DAY}.json"])
    orders = receipt["tables"]["orders"]
    assert orders["folder"].startswith(f"postgres/orders/{DAY}/")
    assert f"{orders['folder']}/orders.csv" in first
    assert not [key for key in first if key.startswith(".staging/")]

    for job in JOBS:
        s3_pipeline.run_ok(job, day=DAY)

    assert objects(s3_server, s3_pipeline) == first
    assert kept_versions(s3_pipeline.data_dir, "postgres-to-lfs", as_date(DAY)) == []


def test_a_changed_rerun_keeps_the_replaced_receipt_and_restore_puts_it_back(
    s3_server: S3Server, s3_pipeline: Pipeline, source_files: dict[str, Path]
) -> None:
    job = "csv-to-lfs"
    full = source_files["order_details.csv"].read_bytes()
    # ORDER_DETAILS_CSV may be a URL in the same store.
    shorter = upload(s3_server, s3_pipeline, "order_details.csv", b"".join(full.splitlines(keepends=True)[:-100]))
    s3_pipeline.run_ok(job, day=DAY)
    receipt = receipt_path(s3_pipeline.data_dir, job, as_date(DAY))
    first = receipt.read_bytes()

    changed = s3_pipeline.run(job, day=DAY, ORDER_DETAILS_CSV=shorter)

    assert changed.returncode == 0, changed.stderr[-4000:]
    second = receipt.read_bytes()
    assert second != first
    (version,) = kept_versions(s3_pipeline.data_dir, job, as_date(DAY))
    (table,) = read_day(s3_pipeline.data_dir, as_date(DAY), [job])
    assert table.rows == full.count(b"\n") - 1 - 100

    restored = s3_pipeline.invoke("restore", "--job", job, "--date", DAY)

    assert restored.returncode == 0, restored.stderr[-4000:]
    assert f"{job} {DAY}: restored version {version}; the version it replaced is kept as " in restored.stdout
    assert receipt.read_bytes() == first
    (table,) = read_day(s3_pipeline.data_dir, as_date(DAY), [job])  # its objects were never moved
    assert table.rows == full.count(b"\n") - 1
    (replaced,) = kept_versions(s3_pipeline.data_dir, job, as_date(DAY))
    assert s3_pipeline.invoke("restore", "--job", job, "--date", DAY, "--version", replaced).returncode == 0
    assert receipt.read_bytes() == second


def test_prune_removes_old_days_and_what_unpublished_runs_left(s3_server: S3Server, s3_pipeline: Pipeline) -> None:
    job = "csv-to-lfs"
    today = dt.datetime.now(dt.UTC).date().isoformat()
    s3_pipeline.run_ok(job, day=DAY)
    s3_pipeline.run_ok(job, day=today)
    published = objects(s3_server, s3_pipeline)
    # What a run killed before its publish leaves: its note and a run folder no receipt names.
    fs = s3_server.filesystem()
    prefix = s3_pipeline.env["DATA_DIR"].removeprefix("s3://")
    fs.pipe_file(f"{prefix}/.staging/{job}/{today}/deadbeef0000.json", b'{"run": "deadbeef0000", "folders": null}')
    fs.pipe_file(f"{prefix}/csv/{today}/deadbeef0000/order_details.csv", b"half")

    result = s3_pipeline.invoke("prune", "--force", RETENTION_DAYS="30")

    assert result.returncode == 0, result.stderr[-4000:]
    assert f"prune {DAY}: removed" in result.stdout
    assert f"prune {today}: removed 1 run folders that unpublished runs of {job} left" in result.stdout
    left = objects(s3_server, s3_pipeline)
    assert not [key for key in left if DAY in key]
    assert left == {key: data for key, data in published.items() if DAY not in key}
    assert {t.table for t in read_day(s3_pipeline.data_dir, as_date(today), [job])} == {"order_details"}


def target_failure(pipeline: Pipeline, tmp_path: Path, **settings: str) -> dict[str, object]:
    """Run csv-to-lfs with ``settings``; the target's failure record (``PIPELINE_FAILURE_FILE``)."""
    failures = tmp_path / "failures.jsonl"
    result = pipeline.run("csv-to-lfs", day=DAY, PIPELINE_FAILURE_FILE=str(failures), **settings)
    assert result.returncode == 1
    records = [json.loads(line) for line in failures.read_text().splitlines()]
    (record,) = [r for r in records if r["component"] == "target-lfs"]
    assert record["message"] in result.stderr  # the same one line, in the job's log
    return record


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"DATA_DIR": "s3://no-such-bucket/x"}, "the bucket of DATA_DIR does not exist"),
        ({"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "refused the credentials"),
        ({"DATA_DIR": "gs://bucket/x"}, "DATA_DIR gs://bucket/x: unknown scheme gs://"),
    ],
    ids=["missing bucket", "wrong credentials", "unknown scheme"],
)
def test_a_bad_store_setting_fails_the_job_in_one_line_as_permanent(
    s3_pipeline: Pipeline, tmp_path: Path, settings: dict[str, str], expected: str
) -> None:
    record = target_failure(s3_pipeline, tmp_path, **settings)

    assert expected in str(record["message"])
    assert record["transient"] is False
    assert "not-the-secret" not in str(record["message"])


def test_an_unreachable_store_fails_the_job_as_transient(s3_pipeline: Pipeline, tmp_path: Path) -> None:
    (port,) = free_ports(1)  # nothing listens there

    record = target_failure(s3_pipeline, tmp_path, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")

    assert "did not answer" in str(record["message"])
    assert record["transient"] is True


def test_the_pipeline_command_reports_an_unreachable_store_in_one_line(s3_pipeline: Pipeline) -> None:
    (port,) = free_ports(1)
    endpoint = f"http://127.0.0.1:{port}"

    result = s3_pipeline.invoke("restore", "--job", "csv-to-lfs", "--date", DAY, AWS_ENDPOINT_URL=endpoint)

    assert result.returncode == 1
    assert f"pipeline restore failed: object store at {endpoint} (AWS_ENDPOINT_URL) did not answer" in result.stderr
    assert "Traceback" not in result.stderr
