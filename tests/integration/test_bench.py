"""`make bench` at a tiny scale: it runs from the project, prints its table, writes latest.json and the page.

Not a timed test: only the shape of the result is checked, never a speed. The day
through Airflow is skipped (`--no-airflow`: minutes of start-up). The peers run, on
tiny data (about 25 s): Sling, dlt and the stock MeltanoLabs path on 200 rows; their
venvs are installed under .bench/peers on the first run (about a minute, then kept).
Memory is taken at two scales, as `--scales 1000,3000` does.
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

JOB_KEYS = {
    "job",
    "rows",
    "seconds",
    "rows_per_s",
    "peak_rss_mb",
    "largest_process",
    "copy_rows_per_s",
    "ratio_to_copy",
}
PEER_KEYS = {"peer", "hop", "rows", "seconds", "rows_per_s", "peak_rss_mb", "largest_process"}
JOBS = ["postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics"]
PART_KEYS = {
    "load": {"part", "rows", "seconds", "rows_per_s"},
    "publish": {"part", "rows", "seconds", "rows_per_s"},
    "export": {"part", "rows", "seconds", "psql_seconds"},
}


def test_bench_at_scales_2_and_3_with_its_peers_writes_latest_json_and_the_page(
    tmp_path: Path, source_files: dict[str, Path]
) -> None:
    suffix = uuid.uuid4().hex[:10]
    env = {**project_env(), "DATA_DIR": str(tmp_path / "data")}
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sources").symlink_to(source_files["northwind.sql"].parent)  # where set-up put them
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--scales",
            "2,3",
            "--stock-rows",
            "200",
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
    assert [job["job"] for job in latest["jobs"]] == JOBS
    assert set(latest["jobs"][0]) == {*JOB_KEYS, "parts"}
    assert set(latest["jobs"][1]) == JOB_KEYS
    # Step 1's data phase: the tap's COPYs of every row to their day files, beside psql's COPY TO.
    [phase] = latest["jobs"][0]["parts"]
    assert set(phase) == {"part", "rows", "seconds", "rows_per_s", "psql_seconds"}
    assert phase["rows"] == latest["jobs"][0]["rows"]
    assert phase["seconds"] > 0
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
    # Every peer on the same data: a Northwind day, then each hop at the first scale.
    assert [peer["peer"] for peer in latest["peers_day"]] == ["sling", "dlt"]
    assert all(peer["seconds"] > 0 for peer in latest["peers_day"])
    hops = [(peer["peer"], peer["hop"]) for peer in latest["peers"]]
    assert hops == [(peer, hop) for peer in ("sling", "dlt", "stock") for hop in ("extract", "load")]
    by_hop = {(peer["peer"], peer["hop"]): peer for peer in latest["peers"]}
    for peer in latest["peers"]:
        assert set(peer) == PEER_KEYS
        assert peer["rows_per_s"] > 0
    assert by_hop["sling", "extract"]["rows"] == by_hop["dlt", "extract"]["rows"] == latest["jobs"][0]["rows"]
    assert by_hop["sling", "load"]["rows"] == by_hop["dlt", "load"]["rows"] == step2["rows"]
    assert by_hop["stock", "extract"]["rows"] == by_hop["stock", "load"]["rows"] == 200
    # Memory: each job's largest process, named, at both scales.
    assert [entry["scale"] for entry in latest["memory"]] == [2, 3]
    assert latest["memory"][1]["rows"] > latest["memory"][0]["rows"]
    for entry in latest["memory"]:
        assert list(entry["jobs"]) == JOBS
        assert all(job["peak_rss_mb"] > 0 and job["largest_process"] for job in entry["jobs"].values())
    assert len(list((tmp_path / "data" / "bench").glob("*-scale2.json"))) == 1
    assert "postgres-to-lfs" in result.stdout
    assert "goals (reported, not asserted):" in result.stdout
    assert "not measured" not in result.stdout
    assert "Postgres tables to files: ours / sling = " in result.stdout
    page = (tmp_path / "data" / "bench" / "latest.html").read_text()
    assert page.count("<svg") == 6  # five hops and the memory chart; no timeline without Airflow
    assert "Not run (<code>--no-airflow</code>)" in page
    assert "stock (200 rows)" in page
