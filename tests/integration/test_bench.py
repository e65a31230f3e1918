"""`make bench` at a tiny scale: it runs from the project, prints its table and writes latest.json.

Not a timed test: only the shape of the result is checked, never a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, project_env

pytestmark = pytest.mark.integration

JOB_KEYS = {"job", "rows", "seconds", "rows_per_s", "peak_rss_mb", "copy_rows_per_s", "ratio_to_copy"}


def test_bench_at_scale_2_writes_latest_json(tmp_path: Path, source_files: dict[str, Path]) -> None:
    suffix = uuid.uuid4().hex[:10]
    env = {**project_env(), "DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [
            sys.executable,
            "scripts/bench.py",
            "--scale",
            "2",
            "--source-db",
            f"test_bench_source_{suffix}",
            "--analytics-db",
            f"test_bench_analytics_{suffix}",
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
    for job in latest["jobs"]:
        assert set(job) == JOB_KEYS
        assert job["rows"] > 0
        assert job["peak_rss_mb"] > 0
    assert latest["jobs"][1]["rows"] == 2 * 2155
    assert len(list((tmp_path / "data" / "bench").glob("*-scale2.json"))) == 1
    assert "postgres-to-lfs" in result.stdout
