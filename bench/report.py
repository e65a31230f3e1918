r"""latest.json's entries, the goals' ratios and the printed table.

The goals are reported, never asserted (a figure depends on the machine and its load):
step 2's load + publish against COPY FROM of the same files (goal >= 0.6), the export
against psql's ``\copy`` of the same two queries (<= 1.0x), a Northwind day against
Sling's time for the same tables (<= 1.4x), a day through Airflow against ``make run``
(<= 3x) and every process's peak RSS (< 300 MB at SCALE=1000).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import psycopg

from bench.memory import PROJECT_ROOT
from pipeline.config import project_env
from pipeline.databases import SOURCE, conninfo

RSS_GOAL_MB = 300


def job_entry(job: str, rows: int, seconds: float, peak: float, copy_rows_per_s: float) -> dict[str, Any]:
    """One job's figures as latest.json lists them."""
    rate = rows / seconds
    return {
        "job": job,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rate),
        "peak_rss_mb": peak,
        "copy_rows_per_s": round(copy_rows_per_s),
        "ratio_to_copy": round(rate / copy_rows_per_s, 4),
    }


def machine() -> str:
    """A short description of where the figures were taken."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect(
        conninfo(SOURCE, project_env(PROJECT_ROOT, with_admin=True), database="postgres", admin=True)
    ) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    system = f"Linux {platform.release()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores {model}, {system}, PostgreSQL {server}"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    return "not measured" if not numerator or not denominator else f"{numerator / denominator:.2f}"


def goals(result: dict[str, Any]) -> list[str]:
    """One line per goal: the figure of this run beside the goal."""
    step2 = next(job for job in result["jobs"] if job["job"] == "lfs-to-analytics")
    parts = {part["part"]: part for part in step2["parts"]}
    load_publish = parts["load"]["seconds"] + parts["publish"]["seconds"]
    load_publish_rate = parts["load"]["rows"] / load_publish if load_publish else None
    day = result["northwind_day_seconds"]
    peak = max([job["peak_rss_mb"] for job in result["jobs"]] + [result["northwind_day_peak_rss_mb"]])
    return [
        f"step 2 load + publish / COPY FROM the same files: {_ratio(load_publish_rate, step2['copy_rows_per_s'])}"
        " (goal >= 0.6)",
        f"step 2 export / psql \\copy of the same queries: "
        f"{_ratio(parts['export']['seconds'], parts['export']['psql_seconds'])} (goal <= 1.0)",
        f"Northwind day (make run) / Sling: {_ratio(day, result.get('sling_day_seconds'))} (goal <= 1.4)",
        f"day through Airflow / make run: {_ratio(result['airflow_day_seconds'], day)} (goal <= 3)",
        f"largest peak RSS of any process: {peak:.0f} MB (goal < {RSS_GOAL_MB} MB at SCALE=1000)",
    ]


def table(result: dict[str, Any]) -> str:
    """The printed summary."""
    lines = [
        f"SCALE={result['scale']}  ({result['machine']})",
        f"{'job':<18}{'rows':>10}{'seconds':>9}{'rows/s':>10}{'peak MB':>9}{'COPY rows/s':>13}{'x COPY':>8}",
    ]
    for job in result["jobs"]:
        lines.append(
            f"{job['job']:<18}{job['rows']:>10}{job['seconds']:>9.2f}{job['rows_per_s']:>10}"
            f"{job['peak_rss_mb']:>9.0f}{job['copy_rows_per_s']:>13}{job['ratio_to_copy']:>8.3f}"
        )
        for part in job.get("parts", []):
            extra = f"  psql \\copy {part['psql_seconds']:.2f} s" if "psql_seconds" in part else ""
            rate = f"{part['rows_per_s']:>10}" if "rows_per_s" in part else f"{'':>10}"
            lines.append(f"  {part['part']:<16}{part['rows']:>10}{part['seconds']:>9.2f}{rate}{extra}")
    seconds = {key: result.get(key) for key in ("sling_day_seconds", "airflow_day_seconds")}
    shown = {key: "not measured" if value is None else f"{value:.2f} s" for key, value in seconds.items()}
    lines += [
        f"northwind day (make run): {result['northwind_day_seconds']:.2f} s, "
        f"COPY of the same tables {result['northwind_day_copy_seconds']:.3f} s, "
        f"Sling {shown['sling_day_seconds']}, through Airflow {shown['airflow_day_seconds']}",
        "goals (reported, not asserted):",
        *(f"  {line}" for line in goals(result)),
    ]
    return "\n".join(lines)
