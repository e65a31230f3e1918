"""The step-2 sensor's view of a step-1 receipt, in Airflow's own virtualenv, with DATA_DIR in a bucket.

The sensor decides from the newer of the day's receipt and the upstream DAG's run
(``outcome.upstream_verdict``); in a bucket the receipt's time is its object's
LastModified. A real S3 server (``tests.s3server``); the receipt is put as step 1's
publish leaves it, at ``_runs/{job}/{day}.json`` under DATA_DIR.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

from tests.orchestrate.conftest import PROJECT_ROOT
from tests.s3server import S3Server


def sensed(airflow_venv: Path, env: dict[str, str], job: str, day: str) -> str | None:
    """When the sensor sees ``job``'s receipt for ``day`` written (None: no receipt)."""
    report = Path(__file__).with_name("receipt_report.py")
    result = subprocess.run(
        [str(airflow_venv / "bin" / "python"), str(report), str(PROJECT_ROOT), job, day],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["written"]


def test_the_sensor_reads_a_receipt_in_a_bucket_by_its_time_and_sees_none_for_another_day(
    airflow_venv: Path, s3_server: S3Server
) -> None:
    data_dir = s3_server.data_dir()
    s3_server.filesystem().pipe_file(f"{data_dir.removeprefix('s3://')}/_runs/csv-to-lfs/2024-01-02.json", b"{}\n")
    env = {"DATA_DIR": data_dir, **s3_server.env()}

    written = sensed(airflow_venv, env, "csv-to-lfs", "2024-01-02")
    assert written is not None
    age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(written)
    assert dt.timedelta(0) <= age < dt.timedelta(minutes=2), written
    assert sensed(airflow_venv, env, "csv-to-lfs", "2024-01-03") is None
