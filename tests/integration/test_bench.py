"""`make bench` at a tiny scale: it runs from the project, prints its table and writes latest.json.

Not a timed test: only the shape of the result is checked, never a speed. The day
through Airflow is skipped (`--no-airflow`: minutes of start-up); Sling's figure is
checked when its wheel is installed.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, project_env

pytestmark = pytest.mark.integration

JOB_KEYS = {"job", "rows", "seconds", "rows_per_s", "peak_rss_mb", "copy_rows_per_s", "ratio_to_copy"}
PART_KEYS = {
    "load": {"part", "rows", "seconds", "rows_per_s"},
    "publish": {"part", "rows", "seconds", "rows_per_s"},
    "export": {"part", "rows", "seconds", "psql_seconds"},
}


def test_bench_at_scale_2_writes_latest_json(tmp_path: Path, source_files: dict[str, Path]) -> None:
    suffix = uuid.uuid4().hex[:10]
    env = {**project_env(), "DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sources").symlink_to(source_files["northwind.sql"].parent)  # where set-up put them
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--scale",
            "2",
            "--source-db",
            f"test_bench_source_{suffix}",
            "--analytics-db",
            f"test_bench_analytics_{suffix}",
            "--no-airflow",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    latest = json.loads((tmp_path / "data" / "bench" / "latest.json").read_text())
    assert latest["scale"] == 2
    assert latest["northwind_day_seconds"] > 0
    assert [job["job"] for job in latest["jobs"]] == ["postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics"]
    for job in latest["jobs"][:2]:
        assert set(job) == JOB_KEYS
    step2 = latest["jobs"][2]
    assert set(step2) == {*JOB_KEYS, "parts"}
    for job in latest["jobs"]:
        assert job["rows"] > 0
        assert job["peak_rss_mb"] > 0
    assert latest["jobs"][1]["rows"] == 2 * 2155
    # Step 2's parts: the load takes every row of the day, the publish the same, the export the joined rows.
    assert [part["part"] for part in step2["parts"]] == list(PART_KEYS)
    for part in step2["parts"]:
        assert set(part) == PART_KEYS[part["part"]]
        assert part["seconds"] > 0
    load, publish, export = step2["parts"]
    assert load["rows"] == publish["rows"] == step2["rows"]
    assert export["rows"] == 2 * 2155
    assert export["psql_seconds"] > 0
    assert latest["airflow_day_seconds"] is None
    if importlib.util.find_spec("sling_linux_amd64"):
        assert latest["sling_day_seconds"] > 0
    else:
        assert "sling_day_seconds" not in latest
    assert len(list((tmp_path / "data" / "bench").glob("*-scale2.json"))) == 1
    assert "postgres-to-lfs" in result.stdout
    assert "goals (reported, not asserted):" in result.stdout
