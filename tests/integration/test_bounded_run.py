"""`make run` bounds each job by PIPELINE_JOB_TIMEOUT_MINUTES, as Airflow does: a job past it is stopped, whole.

The real script and real Meltano jobs, with a bound far below a job's start-up.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, Pipeline

pytestmark = pytest.mark.integration

DAY = "2024-03-05"


def processes_of(data_dir: Path) -> list[int]:
    """The processes whose environment names ``data_dir`` as DATA_DIR: this test's jobs and their plugins."""
    marker = f"DATA_DIR={data_dir}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def test_a_job_past_its_timeout_is_stopped_with_its_plugins_and_said_so(pipeline: Pipeline, tmp_path: Path) -> None:
    # The loaders pause mid-extract (a test-only hook, pipeline/core/crashpoints.py), as a hung job would.
    marker = tmp_path / "paused"
    hang = {"PIPELINE_TEST_PAUSE_AT": "extract", "PIPELINE_TEST_PAUSE_MARKER": str(marker)}
    result = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "run_day.sh"), DAY],
        cwd=PROJECT_ROOT,
        env={**pipeline.env, **hang, "PIPELINE_JOB_TIMEOUT_MINUTES": "0.3"},  # 18 s
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert marker.is_file()  # a loader was running when the bound stopped it
    for job in ("postgres-to-lfs", "csv-to-lfs"):
        assert (
            f"FAILED: step {job} for {DAY}: ran longer than PIPELINE_JOB_TIMEOUT_MINUTES=0.3 and was stopped"
            in result.stderr
        )
    assert "== lfs-to-analytics" not in result.stdout
    assert not (pipeline.data_dir / "_runs").exists()
    # `timeout` ends the whole process group: nothing of the jobs outlives the script (SIGKILL after 10 s).
    deadline = time.monotonic() + 30
    while processes_of(pipeline.data_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_of(pipeline.data_dir) == []


def test_a_bad_timeout_is_refused_in_one_line_naming_the_setting(pipeline: Pipeline) -> None:
    result = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "run_day.sh"), DAY],
        cwd=PROJECT_ROOT,
        env={**pipeline.env, "PIPELINE_JOB_TIMEOUT_MINUTES": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "PIPELINE_JOB_TIMEOUT_MINUTES=0 is not a number of minutes above 0 (unset: 60)"
    ]
    assert result.stdout == ""
