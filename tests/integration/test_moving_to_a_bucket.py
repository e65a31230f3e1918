"""Moving an installation from local disk to a bucket: the day folders copied up as they are.

Step 1 on object storage writes each run under a folder of its own, but a receipt
written on local disk names folders without one; step 2 reads whatever a receipt
names, so days published before the move are read from the bucket as they were
written, and so is their result until the day is exported again (README: Object
storage). A SeaweedFS of the tests' (``tests.s3server``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pipeline.core.errors import FAILURE_FILE_ENV
from pipeline.core.store import data_root
from pipeline.warehouse.results import result_files
from tests.conftest import Pipeline
from tests.s3server import S3Server

pytestmark = pytest.mark.integration

DAY = "2024-01-02"
RESULT = ["orders_with_details.csv", "orders_with_details.json"]


def test_a_day_copied_into_a_bucket_is_loaded_and_exported_there_byte_for_byte(
    pipeline: Pipeline, s3_server: S3Server, tmp_path: Path
) -> None:
    for job in ("postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics"):
        pipeline.run_ok(job, day=DAY)
    url = s3_server.data_dir()
    s3_server.filesystem().put(f"{pipeline.data_dir}/", url.removeprefix("s3://") + "/", recursive=True)
    in_bucket = {"DATA_DIR": url, **s3_server.env()}
    moved = result_files(data_root(url, in_bucket), dt.date.fromisoformat(DAY), RESULT)
    assert moved is not None
    assert {name: path.read_bytes() for name, path in moved.items()} == {
        name: (pipeline.data_dir / "results" / DAY / name).read_bytes() for name in RESULT
    }

    assert pipeline.run("lfs-to-analytics", day=DAY, **in_bucket).returncode == 0
    objects = s3_server.objects(url)
    assert not [key for key in objects if key.startswith(f"results/{DAY}/orders")]  # the moved result replaced
    receipt = json.loads(objects[f"results/{DAY}/_result.json"])
    for name in RESULT:
        local = (pipeline.data_dir / "results" / DAY / name).read_bytes()
        assert objects[f"{receipt['folder']}/{name}"] == local, name

    assert pipeline.run("lfs-to-analytics", day=DAY, **in_bucket).returncode == 0
    assert s3_server.objects(url) == objects  # an identical rerun leaves the result and its receipt as they are

    damaged = f"csv/{DAY}/order_details.csv"
    extra_row = b"10248,42,9.8,10,0\n"
    s3_server.filesystem().pipe_file(f"{url.removeprefix('s3://')}/{damaged}", objects[damaged] + extra_row)
    failures = tmp_path / "failures.jsonl"
    assert pipeline.run("lfs-to-analytics", day=DAY, **in_bucket, **{FAILURE_FILE_ENV: str(failures)}).returncode
    record = json.loads(failures.read_text().splitlines()[0])
    assert record["component"] == "target-analytics", record
    assert record["transient"] is False, record
    assert f"{url}/{damaged} has sha256" in record["message"], record
    assert "the object changed after step 1 wrote it; nothing of the day was published" in record["message"], record
