r"""latest.json's entries, the goals' ratios and the printed table.

The goals are reported, never asserted (a figure depends on the machine and its load):
step 1's data phase (postgres-to-lfs's COPYs to their day files, without start-up)
against psql's ``COPY TO`` of the same tables (goal >= 0.7), each job with ``DATA_DIR``
on a local SeaweedFS against the same job on local disk (goal >= 0.7, under 300 MB),
step 2's load + publish
against COPY FROM of the same files (goal >= 0.6), the export
against psql's ``\copy`` of the same two queries (<= 1.0x), a Northwind day against
Sling's time for the same tables (<= 2x, moonshot 1.4x), a day through Airflow,
trigger to result (<= 10 s), and every job's largest process (< 300 MB, within 10%
between the scales). Every ratio of ours to a peer or to COPY is printed, from the
same charts the page draws (:func:`charts`).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import psycopg

from bench.changes import changes_lines
from bench.memory import PROJECT_ROOT, Timing
from pipeline.core.config import project_env
from pipeline.core.connections import SOURCE, conninfo

RSS_GOAL_MB = 300


def job_entry(job: str, rows: int, timing: Timing, copy_rows_per_s: float) -> dict[str, Any]:
    """One job's figures as latest.json lists them."""
    rate = rows / timing.seconds
    return {
        "job": job,
        "rows": rows,
        "seconds": round(timing.seconds, 2),
        "rows_per_s": round(rate),
        "peak_rss_mb": timing.peak_rss_mb,
        "largest_process": timing.largest,
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


def _step2(result: dict[str, Any]) -> dict[str, Any]:
    return next(job for job in result["jobs"] if job["job"] == "lfs-to-analytics")


def load_publish_rate(result: dict[str, Any]) -> float:
    """Step 2's load + publish in rows/s: the part of step 2 that is the hop "files into keyed tables"."""
    parts = {part["part"]: part for part in _step2(result)["parts"]}
    return parts["load"]["rows"] / (parts["load"]["seconds"] + parts["publish"]["seconds"])


def data_phase_part(result: dict[str, Any]) -> dict[str, Any] | None:
    """postgres-to-lfs's data phase (``bench.data_phase``); None in a result taken before it was measured."""
    job = next(job for job in result["jobs"] if job["job"] == "postgres-to-lfs")
    return next(iter(job.get("parts", [])), None)


def _peer_rate(result: dict[str, Any], hop: str) -> list[tuple[str, float]]:
    return [
        (f"{p['peer']} ({p['rows']} rows)" if p["peer"] == "stock" else p["peer"], p["rows_per_s"])
        for p in result.get("peers", [])
        if p["hop"] == hop
    ]


def charts(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One chart per hop: ``{"title", "unit", "higher_is_better", "bars": [(label, value, is_ours), ...]}``.

    Ours first, then each peer, then COPY (the limit); the printed ratios and the page
    are both made from these, so they always agree.
    """
    jobs = {job["job"]: job for job in result["jobs"]}
    step2 = _step2(result)
    day_bars = [("ours: make run", result["northwind_day_seconds"], True)]
    day_bars += [(peer["peer"], peer["seconds"], False) for peer in result.get("peers_day", [])]
    day_bars.append(("COPY", result["northwind_day_copy_seconds"], False))
    return [
        {
            "title": "Postgres tables to files",
            "unit": "rows/s",
            "higher_is_better": True,
            "bars": [
                ("ours: postgres-to-lfs (whole job)", jobs["postgres-to-lfs"]["rows_per_s"], True),
                *((label, rate, False) for label, rate in _peer_rate(result, "extract")),
                ("COPY TO", jobs["postgres-to-lfs"]["copy_rows_per_s"], False),
            ],
        },
        *(
            [
                {
                    "title": "Postgres tables to their day files (step 1's data phase, no start-up)",
                    "unit": "rows/s",
                    "higher_is_better": True,
                    "bars": [
                        ("ours: postgres-to-lfs's COPYs to their place", phase["rows_per_s"], True),
                        ("COPY TO", round(phase["rows"] / phase["psql_seconds"]), False),
                    ],
                }
            ]
            if (phase := data_phase_part(result))
            else []
        ),
        {
            "title": "Files into keyed tables (step 2 load + publish)",
            "unit": "rows/s",
            "higher_is_better": True,
            "bars": [
                ("ours: load + publish", round(load_publish_rate(result)), True),
                *((label, rate, False) for label, rate in _peer_rate(result, "load")),
                ("COPY FROM", step2["copy_rows_per_s"], False),
            ],
        },
        {
            "title": "CSV source checked and typed to a file",
            "unit": "rows/s",
            "higher_is_better": True,
            "bars": [
                ("ours: csv-to-lfs (whole job)", jobs["csv-to-lfs"]["rows_per_s"], True),
                ("COPY FROM (typed, keyed)", jobs["csv-to-lfs"]["copy_rows_per_s"], False),
            ],
        },
        {"title": "A Northwind day", "unit": "s", "higher_is_better": False, "bars": day_bars},
    ]


def _ratio(numerator: float | None, denominator: float | None) -> str:
    return "-" if not numerator or not denominator else f"{numerator / denominator:.2f}"


def ratios(result: dict[str, Any]) -> list[str]:
    """Ours against every other bar of its chart: a rate as ours / theirs, a time as ours / theirs (x slower)."""
    lines = []
    for chart in charts(result):
        ours = next(bar for bar in chart["bars"] if bar[2])
        for label, value, is_ours in chart["bars"]:
            if not is_ours:
                kind = "speed" if chart["higher_is_better"] else "time"
                lines.append(f"{chart['title']}: ours / {label} = {_ratio(ours[1], value)} ({kind})")
    return lines


def memory_lines(result: dict[str, Any]) -> list[str]:
    """Each job's largest process at every scale, and its growth from the first to the last scale."""
    first, last = result["memory"][0], result["memory"][-1]
    lines = []
    for job, figure in first["jobs"].items():
        at = [entry["jobs"][job] for entry in result["memory"]]
        shown = " / ".join(f"{a['peak_rss_mb']:.0f} MB ({a['largest_process']})" for a in at)
        scales = " / ".join(str(entry["scale"]) for entry in result["memory"])
        if len(result["memory"]) == 1:
            lines.append(f"{job} at SCALE {scales}: {shown} (one scale: --scales N,M for the growth)")
            continue
        growth = last["jobs"][job]["peak_rss_mb"] / figure["peak_rss_mb"] - 1
        lines.append(f"{job} at SCALE {scales}: {shown}; growth {growth:+.0%}")
    return lines


def goals(result: dict[str, Any]) -> list[str]:
    """One line per goal: the figure of this run beside the goal."""
    step2 = _step2(result)
    parts = {part["part"]: part for part in step2["parts"]}
    day = result["northwind_day_seconds"]
    sling = next((peer["seconds"] for peer in result.get("peers_day", []) if peer["peer"] == "sling"), None)
    peaks = [job["peak_rss_mb"] for entry in result["memory"] for job in entry["jobs"].values()]
    airflow = result["airflow_day_seconds"]
    airflow_shown = "skipped" if airflow is None else f"{airflow:.2f} s"
    load_publish = _ratio(load_publish_rate(result), step2["copy_rows_per_s"])
    phase = data_phase_part(result)
    phase_ratio = "not measured" if phase is None else _ratio(phase["psql_seconds"], phase["seconds"])
    store = result.get("object_store")
    if store:
        slowest = min(store["jobs"], key=lambda job: job["speed_to_local"])
        store_goal = (
            f"each job on SeaweedFS / on local disk: slowest {slowest['job']} {slowest['speed_to_local']:.2f}x "
            f"(goal >= 0.7 at SCALE=1000); largest process {max(j['peak_rss_mb'] for j in store['jobs']):.0f} MB "
            f"(goal < {RSS_GOAL_MB} MB)"
        )
    else:
        store_goal = "each job on SeaweedFS / on local disk: not run (--store-jobs none) (goal >= 0.7)"
    return [
        f"step 1 data phase (postgres-to-lfs's COPYs to their day files) / psql COPY TO: {phase_ratio} (goal >= 0.7)",
        store_goal,
        f"step 2 load + publish / COPY FROM the same files: {load_publish} (goal >= 0.6)",
        f"step 2 export / psql \\copy of the same queries: "
        f"{_ratio(parts['export']['seconds'], parts['export']['psql_seconds'])} (goal <= 1.0)",
        f"Northwind day (make run) / Sling: {'skipped (--no-peers)' if sling is None else _ratio(day, sling)}"
        " (goal <= 2, moonshot 1.4)",
        f"day through Airflow, trigger to result: {airflow_shown} (goal <= 10 s)",
        f"largest peak RSS of any job's process: {max(peaks):.0f} MB"
        f" (goal < {RSS_GOAL_MB} MB, within 10% between the scales)",
    ]


def store_lines(result: dict[str, Any]) -> list[str]:
    """Each job with DATA_DIR on SeaweedFS beside local disk, and step 1's data phase there."""
    store = result.get("object_store")
    if not store:
        return ["not run (--store-jobs none)"]
    lines = [
        f"{job['job']}: {job['seconds']:.2f} s on SeaweedFS, {job['local_seconds']:.2f} s on local disk: "
        f"{job['speed_to_local']:.2f}x local speed; largest process {job['peak_rss_mb']:.0f} MB "
        f"({job['largest_process']})"
        for job in store["jobs"]
    ]
    if phase := store.get("data_phase"):
        lines.append(
            f"postgres-to-lfs data phase on SeaweedFS: {phase['seconds']:.2f} s ({phase['rows_per_s']} rows/s), "
            f"psql COPY TO (local files) {phase['psql_seconds']:.2f} s"
        )
    return lines


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
    if result.get("peers"):
        lines.append(f"{'peer, hop':<26}{'rows':>10}{'seconds':>9}{'rows/s':>10}{'peak MB':>9}")
        for peer in result["peers"]:
            lines.append(
                f"{peer['peer'] + ', ' + peer['hop']:<26}{peer['rows']:>10}{peer['seconds']:>9.2f}"
                f"{peer['rows_per_s']:>10}{peer['peak_rss_mb']:>9.0f}"
            )
    airflow = result["airflow_day_seconds"]
    lines += [
        f"northwind day (make run): {result['northwind_day_seconds']:.2f} s, "
        f"COPY of the same tables {result['northwind_day_copy_seconds']:.3f} s"
        + "".join(f", {peer['peer']} {peer['seconds']:.2f} s" for peer in result.get("peers_day", []))
        + (", through Airflow skipped (--no-airflow)" if airflow is None else f", through Airflow {airflow:.2f} s"),
        "ratios:",
        *(f"  {line}" for line in ratios(result)),
        "memory (each job's largest process):",
        *(f"  {line}" for line in memory_lines(result)),
        "object store (DATA_DIR on a local SeaweedFS) against local disk:",
        *(f"  {line}" for line in store_lines(result)),
        "goals (reported, not asserted):",
        *(f"  {line}" for line in goals(result)),
    ]
    if result.get("changes"):
        lines += changes_lines(result["changes"])
    return "\n".join(lines)
