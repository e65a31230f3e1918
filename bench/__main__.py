"""``python -m bench``: parse the arguments, run, print and write the results."""

from __future__ import annotations

import argparse
import json
import os
import sys

import bench
from bench.memory import PROJECT_ROOT
from bench.report import table
from bench.runner import run_bench
from pipeline.config import project_env
from pipeline.databases import ANALYTICS, SOURCE, drop_database
from pipeline.dates import RETENTION_OFF
from pipeline.files import write_text_atomic
from pipeline.lfs import resolve_data_dir


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=(bench.__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=int, default=1000, help="replicas of orders and order_details (default 1000)")
    parser.add_argument("--source-db", default="bench_source", help="throwaway source database (dropped at the end)")
    parser.add_argument("--analytics-db", default="bench_analytics", help="throwaway analytics database (dropped)")
    parser.add_argument(
        "--no-airflow", action="store_true", help="skip the day through Airflow (airflow_day_seconds is then null)"
    )
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be at least 1")
    env = {
        **project_env(PROJECT_ROOT, with_admin=True),
        **RETENTION_OFF,  # the bench runs fixed past days on throwaway databases
        f"{SOURCE}_DATABASE": args.source_db,
        f"{ANALYTICS}_DATABASE": args.analytics_db,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    os.environ["MELTANO_PROJECT_ROOT"] = str(PROJECT_ROOT)  # a relative DATA_DIR is the project's
    bench_dir = resolve_data_dir(env.get("DATA_DIR") or "data") / "bench"
    try:
        result = run_bench(
            args.scale, env, bench_dir, not args.no_airflow, lambda text: print(f"bench: {text}", flush=True)
        )
    finally:
        for prefix in (SOURCE, ANALYTICS):
            drop_database(prefix, env)
    text = json.dumps(result, indent=2) + "\n"
    write_text_atomic(bench_dir / "latest.json", text)
    write_text_atomic(bench_dir / f"{result['taken_at'].replace(':', '')}-scale{args.scale}.json", text)
    print(table(result))
    print(f"written: {bench_dir / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
