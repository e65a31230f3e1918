"""The run: a Northwind day with its peers, then the scaled source through each job and step 2's parts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import airflow_day, peers
from bench.changes import changes_bench
from bench.copy_baseline import copy_baseline, csv_copy_baseline
from bench.data_phase import data_phase
from bench.log_changes import log_based_bench
from bench.memory import PROJECT_ROOT, Timing, timed
from bench.object_store import object_store_jobs
from bench.report import job_entry, machine
from bench.source import fresh_databases, scale_source, scaled_csv_env, source_tables, write_scaled_csv
from bench.step2 import time_parts
from pipeline.core.config import sources_dir
from pipeline.core.connections import ANALYTICS, SOURCE
from pipeline.days.layout import receipt_path
from pipeline.jobs import DAY_JOBS, STEP1_JOBS, STEP2_JOB
from pipeline.setup.replication import STEP1_SOURCE_JOB

DAY = dt.date(2024, 1, 2)
AIRFLOW_DAY = dt.date(2024, 1, 3)  # a day of its own: a first run, as make run's is
JOBS = DAY_JOBS.order
# The step-1 job compared with a COPY FROM of its CSV source (STEP1_SOURCE_JOB's is a COPY TO).
CSV_JOB = DAY_JOBS.running("tap-order-details")


def receipt_rows(data_dir: Path, job: str) -> int:
    """Rows a step-1 job published for the day, from its receipt."""
    receipt = json.loads(receipt_path(data_dir, job, DAY).read_text())
    return sum(entry["rows"] for entry in receipt["tables"].values())


@dataclasses.dataclass(frozen=True)
class Options:
    """What the run includes besides our jobs (``python -m bench``'s flags)."""

    scales: tuple[int, ...]
    with_airflow: bool
    with_peers: bool
    stock_rows: int
    changes_rows: int  # the table of issue 19's INCREMENTAL against FULL_TABLE (bench.changes)
    store_jobs: tuple[str, ...] = JOBS


def northwind_day(env: dict[str, str], work: Path, options: Options, say: Callable[[str], None]) -> dict[str, Any]:
    """`make run`'s day, the same tables by COPY and by each peer, and the day through Airflow."""
    day = timed(["scripts/run_day.sh", DAY.isoformat()], env, work / "logs" / "northwind-day.log")
    tables = source_tables(env)
    day_copy = copy_baseline(env, tables, work / "copy")
    day_copy_seconds = day_copy["out_seconds"] + day_copy["in_seconds"]
    say(f"northwind day: {day.seconds:.2f} s (COPY of the same tables: {day_copy_seconds:.3f} s)")
    figures: dict[str, Any] = {
        "northwind_day_seconds": round(day.seconds, 2),
        "northwind_day_peak_rss_mb": day.peak_rss_mb,
        "northwind_day_copy_seconds": round(day_copy_seconds, 3),
        "peers_day": [],
        "airflow_day_seconds": None,
    }
    if options.with_peers:
        figures["peers_day"] = peers.day(env, tables, Path(env["ORDER_DETAILS_CSV"]), work / "peers", work / "logs")
        say("northwind day by " + ", ".join(f"{p['peer']}: {p['seconds']:.2f} s" for p in figures["peers_day"]))
    if options.with_airflow and airflow_day.installed():
        say("northwind day through Airflow (scripts/airflow.sh) ...")
        through = airflow_day.airflow_day(env, AIRFLOW_DAY, Path(env["DATA_DIR"]), work)
        figures["airflow_day_seconds"] = through["seconds"]
        figures["airflow_timeline"] = through["timeline"]
        figures["airflow_states"] = through["states"]
        say(f"northwind day through Airflow, trigger to result: {through['seconds']:.2f} s")
    return figures


def scaled_source(
    scale: int, run_env: dict[str, str], work: Path, dump: Path, details: Path
) -> tuple[dict[str, str], Path, int]:
    """Fresh databases and the source scaled ``scale`` times; (the jobs' environment, the scaled CSV, its rows)."""
    fresh_databases(run_env, dump)
    shutil.rmtree(run_env["DATA_DIR"], ignore_errors=True)
    scaled_csv = work / "order_details.csv"
    csv_rows = write_scaled_csv(details, scaled_csv, scale)
    scale_source(run_env, scaled_csv, scale)
    return {**run_env, **scaled_csv_env(work, scaled_csv)}, scaled_csv, csv_rows


def run_jobs(scaled_env: dict[str, str], work: Path, say: Callable[[str], None]) -> dict[str, Timing]:
    """Each job once for the day, in order, with ``meltano run``."""
    meltano = str(PROJECT_ROOT / ".venv" / "bin" / "meltano")
    measured = {}
    for job in JOBS:
        say(f"running {job} ...")
        job_env = {**scaled_env, "PIPELINE_DATE": DAY.isoformat()}
        measured[job] = timed([meltano, "run", job], job_env, work / "logs" / f"{job}.log")
    return measured


def memory_entry(scale: int, rows: int, measured: dict[str, Timing]) -> dict[str, Any]:
    """Each job's largest process at one scale, for the flat-memory check."""
    return {
        "scale": scale,
        "rows": rows,
        "jobs": {job: {"peak_rss_mb": t.peak_rss_mb, "largest_process": t.largest} for job, t in measured.items()},
    }


def run_bench(env: dict[str, str], bench_dir: Path, options: Options, say: Callable[[str], None]) -> dict[str, Any]:
    """Everything in the package's docstring; returns the result document."""
    work = bench_dir / "work"
    shutil.rmtree(work, ignore_errors=True)  # the previous run's logs
    (work / "logs").mkdir(parents=True)
    sources = sources_dir(PROJECT_ROOT, env)
    dump, details = sources / "northwind.sql", sources / "order_details.csv"
    if not dump.is_file() or not details.is_file():
        sys.exit(f"bench: {dump} or {details} missing: run make setup")
    if options.with_peers:
        peers.install()
    data_dir = work / "data"
    run_env = {**env, "DATA_DIR": str(data_dir), "ORDER_DETAILS_CSV": str(details)}

    say(f"northwind day: databases {env[f'{SOURCE}_DATABASE']} and {env[f'{ANALYTICS}_DATABASE']}")
    fresh_databases(run_env, dump)
    day = northwind_day(run_env, work, options, say)
    changes = changes_bench(run_env, work, options.changes_rows, say)
    changes.update(log_based_bench(run_env, work, options.changes_rows, say))

    scale = options.scales[0]
    say(f"scaled source: SCALE={scale}")
    scaled_env, scaled_csv, csv_rows = scaled_source(scale, run_env, work, dump, details)
    tables = source_tables(scaled_env)
    copy_pg = copy_baseline(scaled_env, tables, work / "copy")
    copy_csv = csv_copy_baseline(scaled_env, scaled_csv)
    say(
        f"COPY: source tables {copy_pg['rows']} rows out {copy_pg['out_seconds']:.2f} s, "
        f"in {copy_pg['in_seconds']:.2f} s; CSV source {copy_csv['rows']} rows in {copy_csv['in_seconds']:.2f} s"
    )
    measured = run_jobs(scaled_env, work, say)
    pg_rows = receipt_rows(data_dir, STEP1_SOURCE_JOB)
    csv_job_rows = receipt_rows(data_dir, CSV_JOB)
    if csv_job_rows != csv_rows or pg_rows != copy_pg["rows"]:
        sys.exit(f"bench: row counts differ: jobs {pg_rows}/{csv_job_rows}, sources {copy_pg['rows']}/{csv_rows}")
    say("step 2's parts: load, publish, export ...")
    parts = time_parts(scaled_env, data_dir, DAY, list(STEP1_JOBS), work / "logs")
    copy_in_all = (copy_pg["rows"] + copy_csv["rows"]) / (copy_pg["in_seconds"] + copy_csv["in_seconds"])
    copy_to_rate = copy_pg["rows"] / copy_pg["out_seconds"]
    jobs = [
        {
            **job_entry(STEP1_SOURCE_JOB, pg_rows, measured[STEP1_SOURCE_JOB], copy_to_rate),
            "parts": [data_phase(work / "logs" / f"{STEP1_SOURCE_JOB}.log", copy_pg["out_seconds"])],
        },
        job_entry(CSV_JOB, csv_rows, measured[CSV_JOB], copy_csv["rows"] / copy_csv["in_seconds"]),
        {
            **job_entry(STEP2_JOB, pg_rows + csv_rows, measured[STEP2_JOB], copy_in_all),
            "parts": parts,
        },
    ]
    shutil.rmtree(data_dir)  # the logs stay in work/logs, for a look at where the time went
    store = (
        object_store_jobs(
            {**scaled_env, "MELTANO_PROJECT_ROOT": str(PROJECT_ROOT)},
            options.store_jobs,
            measured,
            copy_pg["out_seconds"],
            work,
            say,
        )
        if options.store_jobs
        else None
    )
    peer_hops = []
    if options.with_peers:
        say(f"peers on the same data: {', '.join(peers.FILE_PEERS)}; the stock path on {options.stock_rows} rows ...")
        peer_hops = peers.scaled(
            scaled_env, tables, pg_rows, scaled_csv, csv_rows, options.stock_rows, work / "peers", work / "logs"
        )
    memory = [memory_entry(scale, pg_rows + csv_rows, measured)]
    for other in options.scales[1:]:
        say(f"memory at SCALE={other}: the jobs again on a source {other} times Northwind's")
        other_env, _, other_csv_rows = scaled_source(other, run_env, work, dump, details)
        other_measured = run_jobs(other_env, work, say)
        memory.append(memory_entry(other, receipt_rows(data_dir, STEP1_SOURCE_JOB) + other_csv_rows, other_measured))
        shutil.rmtree(data_dir)
    scaled_csv.unlink()
    return {
        "scale": scale,
        "taken_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        **day,
        "jobs": jobs,
        "peers": peer_hops,
        "memory": memory,
        "changes": changes,
        "object_store": store,
    }
