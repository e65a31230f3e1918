"""The bench's page and ratios from a made-up result: one chart per hop, the Airflow timeline, text escaped."""

from __future__ import annotations

from typing import Any

from bench.page import page
from bench.report import charts, ratios


def _result() -> dict[str, Any]:
    parts = [
        {"part": "load", "rows": 300, "seconds": 1.0, "rows_per_s": 300},
        {"part": "publish", "rows": 300, "seconds": 0.5, "rows_per_s": 600},
        {"part": "export", "rows": 100, "seconds": 1.0, "psql_seconds": 2.0},
    ]
    jobs = [
        {"job": "postgres-to-lfs", "rows": 200, "rows_per_s": 100, "copy_rows_per_s": 1000},
        {"job": "csv-to-lfs", "rows": 100, "rows_per_s": 50, "copy_rows_per_s": 500},
        {"job": "lfs-to-analytics", "rows": 300, "rows_per_s": 150, "copy_rows_per_s": 400, "parts": parts},
    ]
    memory_jobs = {job["job"]: {"peak_rss_mb": 90.0, "largest_process": "target-<analytics>"} for job in jobs}
    return {
        "scale": 2,
        "taken_at": "2026-12-02T12:00:00Z",
        "machine": "2 cores",
        "northwind_day_seconds": 4.0,
        "northwind_day_copy_seconds": 0.1,
        "peers_day": [{"peer": "sling", "seconds": 2.0}, {"peer": "dlt", "seconds": 8.0}],
        "airflow_day_seconds": 8.5,
        "airflow_timeline": [
            {"dag": "daily-csv-to-lfs", "task": "csv-to-lfs", "queued": 0.5, "started": 0.6, "ended": 3.0},
            {"dag": "daily-lfs-to-analytics", "task": "wait-for-x", "queued": 1.0, "started": 3.1, "ended": 3.2},
        ],
        "airflow_states": [
            {"dag": "daily-lfs-to-analytics", "task": "wait-for-x", "state": "up_for_reschedule", "at": 1.2}
        ],
        "jobs": jobs,
        "peers": [
            {"peer": "sling", "hop": "extract", "rows": 200, "rows_per_s": 400},
            {"peer": "stock", "hop": "load", "rows": 50, "rows_per_s": 10},
        ],
        "memory": [{"scale": 2, "rows": 300, "jobs": memory_jobs}, {"scale": 3, "rows": 450, "jobs": memory_jobs}],
    }


def test_every_chart_puts_ours_first_and_copy_last() -> None:
    for chart in charts(_result()):
        assert chart["bars"][0][2] is True
        assert chart["bars"][-1][0].startswith("COPY")


def test_ratios_set_ours_against_every_peer_and_copy() -> None:
    lines = ratios(_result())
    assert "Postgres tables to files: ours / sling = 0.25 (speed)" in lines
    assert "Files into keyed tables (step 2 load + publish): ours / stock (50 rows) = 20.00 (speed)" in lines
    assert "A Northwind day: ours / sling = 2.00 (time)" in lines
    assert "A Northwind day: ours / dlt = 0.50 (time)" in lines


def test_the_page_has_a_chart_per_hop_the_timeline_and_escapes_names() -> None:
    html = page(_result())
    assert html.count("<svg") == 6  # four hops, the timeline, the memory chart
    assert "trigger to result: 8.50 s" in html
    assert "target-&lt;analytics&gt;" in html
    assert "target-<analytics>" not in html
    assert "<script" not in html  # self-contained: nothing run,
    assert "http" not in html  # nothing fetched
