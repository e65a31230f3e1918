"""``python -m bench``: parse the arguments, run, print and write the results (JSON and the HTML page)."""

from __future__ import annotations

import argparse
import json
import os
import sys

import bench
from bench.changes import CHANGED
from bench.changes import DEFAULT_ROWS as CHANGES_ROWS
from bench.memory import PROJECT_ROOT
from bench.page import page
from bench.report import table
from bench.runner import JOBS, Options, run_bench
from pipeline.core.config import project_env
from pipeline.core.connections import ANALYTICS, SOURCE
from pipeline.core.dates import RETENTION_OFF
from pipeline.core.files import write_text_atomic
from pipeline.core.store import is_object_store
from pipeline.days.layout import resolve_data_dir
from pipeline.setup.databases import drop_database

DEFAULT_STOCK_ROWS = 50_000  # the stock RECORD path moves a few thousand rows a second


def _scales(text: str) -> tuple[int, ...]:
    """``1000`` or ``1000,3000``: the scales, the first with everything, the others for memory."""
    try:
        scales = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--scales {text!r}: expected numbers separated by commas") from None
    if not scales or min(scales) < 1:
        raise argparse.ArgumentTypeError(f"--scales {text!r}: every scale must be at least 1")
    return scales


def _jobs(text: str) -> tuple[str, ...]:
    """``--store-jobs``: a comma-separated subset of the jobs, in their order; ``none`` for none."""
    named = [] if text == "none" else text.split(",")
    unknown = sorted(set(named) - set(JOBS))
    if unknown:
        raise argparse.ArgumentTypeError(f"--store-jobs {text!r}: unknown job {unknown[0]!r}; jobs: {', '.join(JOBS)}")
    return tuple(job for job in JOBS if job in named)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=(bench.__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--scales",
        "--scale",
        type=_scales,
        default=(1000,),
        help="replicas of orders and order_details, e.g. 1000 or 1000,3000: everything at the first, "
        "each job's memory again at the others (default 1000)",
    )
    parser.add_argument("--source-db", default="bench_source", help="throwaway source database (dropped at the end)")
    parser.add_argument("--analytics-db", default="bench_analytics", help="throwaway analytics database (dropped)")
    parser.add_argument(
        "--no-airflow", action="store_true", help="skip the day through Airflow (airflow_day_seconds is then null)"
    )
    parser.add_argument("--no-peers", action="store_true", help="skip Sling, dlt and the stock path (a quick run)")
    parser.add_argument(
        "--stock-rows", type=int, default=DEFAULT_STOCK_ROWS, help="rows of the stock RECORD path's capped table"
    )
    parser.add_argument(
        "--changes-rows",
        type=int,
        default=CHANGES_ROWS,
        help="rows of the table INCREMENTAL and FULL_TABLE read after 1,000 changes (default 2,000,000)",
    )
    parser.add_argument(
        "--store-jobs",
        type=_jobs,
        default=JOBS,
        help="the jobs run again with DATA_DIR on a local SeaweedFS, e.g. postgres-to-lfs,csv-to-lfs "
        "(default: all three; 'none': skip)",
    )
    args = parser.parse_args(argv)
    if args.stock_rows < 1:
        parser.error("--stock-rows must be at least 1")
    if args.changes_rows < CHANGED:
        parser.error(f"--changes-rows must be at least {CHANGED}")
    env = {
        **project_env(PROJECT_ROOT, with_admin=True),
        **RETENTION_OFF,  # the bench runs fixed past days on throwaway databases
        f"{SOURCE}_DATABASE": args.source_db,
        f"{ANALYTICS}_DATABASE": args.analytics_db,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    os.environ["MELTANO_PROJECT_ROOT"] = str(PROJECT_ROOT)  # a relative DATA_DIR is the project's
    data_dir = resolve_data_dir(env.get("DATA_DIR") or "data")
    # The bench's own files (results, logs, work) are local: under the project's data/ when DATA_DIR is a bucket.
    bench_dir = (PROJECT_ROOT / "data" if is_object_store(data_dir) else data_dir) / "bench"
    options = Options(
        args.scales, not args.no_airflow, not args.no_peers, args.stock_rows, args.changes_rows, args.store_jobs
    )
    try:
        result = run_bench(env, bench_dir, options, lambda text: print(f"bench: {text}", flush=True))
    finally:
        for prefix in (SOURCE, ANALYTICS):
            drop_database(prefix, env)
    text = json.dumps(result, indent=2) + "\n"
    write_text_atomic(bench_dir / "latest.json", text)
    write_text_atomic(bench_dir / f"{result['taken_at'].replace(':', '')}-scale{result['scale']}.json", text)
    write_text_atomic(bench_dir / "latest.html", page(result))
    print(table(result))
    print(f"written: {bench_dir / 'latest.json'} and {bench_dir / 'latest.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
