"""`make bench [SCALE=N]`: the pipeline's cost at scale, against Postgres COPY in the same run.

What it does, on throwaway databases (``--source-db``/``--analytics-db``, dropped at
the end) and a throwaway data dir under ``$DATA_DIR/bench/work``:

1. A Northwind day: the source seeded from the pinned ``northwind.sql``, then
   ``scripts/run_day.sh`` (what ``make run`` runs) timed end to end, beside the same
   rows moved by COPY (each table out to a file and into a keyed copy).
2. The scaled source: ``orders`` replicated N times with new ids (``order_id + k *
   10000``, so ``order_id`` is widened to integer), the CSV ``order_details``
   replicated N times with the same new ids (N=1000: 2,155,000 rows), written as the
   CSV source and also loaded into the source database as ``bench_order_details``
   (a Postgres table of the same size; its own name, since step 2 refuses two jobs
   publishing one table).
3. Each job run once for one day with ``meltano run``: wall seconds, rows, rows/s,
   and the peak RSS of the largest process of its process tree (each process's
   ``VmHWM`` from /proc, sampled every 0.1 s).
4. The COPY baseline of the same rows, in the same run: ``COPY (SELECT ...) TO`` a
   CSV file and ``COPY ... FROM`` that file into a table with the same primary key.
   Each job is compared with the half that does its physical work: postgres-to-lfs
   (table to file) with COPY TO; csv-to-lfs (parse and type a CSV file) and
   lfs-to-analytics (files into keyed tables) with COPY FROM.

The databases, the scaled copies and the COPY baselines are the administrator's work
(``POSTGRES_ADMIN_*``, as ``make setup``); the jobs run as their own roles.

It prints a table and writes ``$DATA_DIR/bench/latest.json`` and a dated copy.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pipeline.config import project_env
from pipeline.databases import ANALYTICS, SOURCE, conninfo, drop_database
from pipeline.files import write_text_atomic
from pipeline.lfs import receipt_path, resolve_data_dir
from pipeline.provision import provision

PROJECT_ROOT = Path(__file__).resolve().parents[1]

DAY = "2024-01-02"
JOBS = ("postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics")
ID_STRIDE = 10_000  # Northwind's order ids are 10248..11077: copy k gets order_id + k * 10000
DETAILS_SCHEMA = PROJECT_ROOT / "extract" / "order_details.schema.json"
BIG_TABLE = "bench_order_details"


# -- peak RSS of a process tree ------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _peak_rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory:
    """Samples the high-water RSS of every process below ``pid`` until stopped."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            children = _children_map()
            pending, tree = [self.pid], []
            while pending:
                pid = pending.pop()
                tree.append(pid)
                pending.extend(children.get(pid, []))
            for pid in tree:
                self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), _peak_rss_kb(pid))
            self._stop.wait(self.interval)

    def stop(self) -> float:
        """Stop sampling; the largest process's peak RSS in MB."""
        self._stop.set()
        self._thread.join()
        return round(max(self.peak_kb.values(), default=0) / 1024, 1)


def timed(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run ``command``; return (wall seconds, peak RSS MB of its largest process). Fails loudly."""
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        memory = TreeMemory(process.pid)
        code = process.wait()
    seconds = time.perf_counter() - start
    peak = memory.stop()
    if code != 0:
        sys.exit(f"bench: {' '.join(command)} failed (exit {code}); its output is in {log}:\n{log.read_text()[-3000:]}")
    return seconds, peak


# -- sources ---------------------------------------------------------------------------


def fresh_databases(env: dict[str, str], dump: Path) -> None:
    """Drop and create both databases as ``make setup`` does: seeded with Northwind, the jobs' roles granted."""
    for prefix in (SOURCE, ANALYTICS):
        drop_database(prefix, env)
    provision(dump, env)


def write_scaled_csv(original: Path, scaled: Path, scale: int) -> int:
    """The CSV source replicated ``scale`` times with new order ids; returns its data rows."""
    with original.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [row for row in reader]
    column = header.index("order_id")
    with scaled.open("w", newline="") as out:
        out.write(",".join(header) + "\n")
        for k in range(scale):
            offset = k * ID_STRIDE
            lines = []
            for row in rows:
                row = list(row)
                row[column] = str(int(row[column]) + offset)
                lines.append(",".join(row) + "\n")
            out.write("".join(lines))
    return len(rows) * scale


def scale_source(env: dict[str, str], scaled_csv: Path, scale: int) -> None:
    """Replicate orders ``scale`` times and load the scaled CSV as ``bench_order_details``."""
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        conn.execute("ALTER TABLE orders ALTER COLUMN order_id TYPE integer")
        conn.execute(
            "INSERT INTO orders SELECT o.order_id + k * %s, o.customer_id, o.employee_id, o.order_date, "
            "o.required_date, o.shipped_date, o.ship_via, o.freight, o.ship_name, o.ship_address, o.ship_city, "
            "o.ship_region, o.ship_postal_code, o.ship_country FROM orders o, generate_series(1, %s) k",
            (ID_STRIDE, scale - 1),
        )
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (order_id integer NOT NULL, product_id smallint NOT NULL, unit_price real NOT NULL, "
                "quantity smallint NOT NULL, discount real NOT NULL, PRIMARY KEY (order_id, product_id))"
            ).format(sql.Identifier(BIG_TABLE))
        )
        with conn.cursor() as cur, scaled_csv.open("rb") as source:
            statement = sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)").format(sql.Identifier(BIG_TABLE))
            with cur.copy(statement) as copy:
                while block := source.read(1 << 20):
                    copy.write(block)
        conn.execute("VACUUM ANALYZE")


# -- the COPY baseline ---------------------------------------------------------------


def psql(env: dict[str, str], database_prefix: str, script: str) -> float:
    """Run ``script`` with psql (a C client, so the baseline is the server's speed); returns seconds."""
    start = time.perf_counter()
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo(database_prefix, env, admin=True)],
        input=script,
        text=True,
        check=True,
    )
    return time.perf_counter() - start


def copy_baseline(env: dict[str, str], tables: list[str], folder: Path) -> dict[str, float]:
    """Each table out to a CSV file (COPY TO) and back into a keyed copy (COPY FROM); seconds of each half."""
    folder.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_copy CASCADE")
        conn.execute("CREATE SCHEMA bench_copy")
        for table in tables:
            name = sql.Identifier(table)
            conn.execute(sql.SQL("CREATE TABLE bench_copy.{} (LIKE public.{} INCLUDING ALL)").format(name, name))
        rows = sum(
            conn.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(table))).fetchone()[0]
            for table in tables
        )
        # psql parses \copy's table name as SQL does: quote it as SQL.
        source = {table: sql.Identifier("public", table).as_string(conn) for table in tables}
        copy = {table: sql.Identifier("bench_copy", table).as_string(conn) for table in tables}
    out_script = "".join(
        f"\\copy (SELECT * FROM {source[table]}) TO '{folder / table}.csv' (FORMAT csv, HEADER true)\n"
        for table in tables
    )
    in_script = "".join(
        f"\\copy {copy[table]} FROM '{folder / table}.csv' (FORMAT csv, HEADER true)\n" for table in tables
    )
    out_seconds = psql(env, SOURCE, out_script)
    in_seconds = psql(env, SOURCE, in_script)
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        conn.execute("DROP SCHEMA bench_copy CASCADE")
    shutil.rmtree(folder)
    return {"rows": rows, "out_seconds": out_seconds, "in_seconds": in_seconds}


def source_tables(env: dict[str, str]) -> list[str]:
    """The source's base tables, as postgres-to-lfs discovers them."""
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        return [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            ).fetchall()
        ]


def csv_copy_baseline(env: dict[str, str], scaled_csv: Path) -> dict[str, float]:
    """The CSV source COPYed into a keyed table of the declared types (Postgres parses and types each field)."""
    create = (
        "CREATE TABLE bench_csv (order_id integer NOT NULL, product_id smallint NOT NULL, "
        "unit_price real NOT NULL, quantity smallint NOT NULL, discount real NOT NULL, "
        "PRIMARY KEY (order_id, product_id));\n"
    )
    psql(env, ANALYTICS, create)
    seconds = psql(env, ANALYTICS, f"\\copy bench_csv FROM '{scaled_csv}' (FORMAT csv, HEADER true)\n")
    with psycopg.connect(conninfo(ANALYTICS, env, admin=True), autocommit=True) as conn:
        rows = conn.execute("SELECT count(*) FROM bench_csv").fetchone()[0]
        conn.execute("DROP TABLE bench_csv")
    return {"rows": rows, "in_seconds": seconds}


# -- the run ---------------------------------------------------------------------------


def receipt_rows(data_dir: Path, job: str) -> int:
    """Rows a step-1 job published for the day, from its receipt."""
    receipt = json.loads(receipt_path(data_dir, job, dt.date.fromisoformat(DAY)).read_text())
    return sum(entry["rows"] for entry in receipt["tables"].values())


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


def run_bench(scale: int, env: dict[str, str], bench_dir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Everything in the module docstring; returns the result document."""
    work = bench_dir / "work"
    shutil.rmtree(work, ignore_errors=True)  # the previous run's logs
    (work / "logs").mkdir(parents=True)
    sources = PROJECT_ROOT / "data" / "sources"
    dump, details = sources / "northwind.sql", sources / "order_details.csv"
    if not dump.is_file() or not details.is_file():
        sys.exit(f"bench: {dump} or {details} missing: run make setup")
    meltano = str(PROJECT_ROOT / ".venv" / "bin" / "meltano")
    data_dir = work / "data"
    run_env = {**env, "DATA_DIR": str(data_dir), "ORDER_DETAILS_CSV": str(details)}

    say(f"northwind day: databases {env[f'{SOURCE}_DATABASE']} and {env[f'{ANALYTICS}_DATABASE']}")
    fresh_databases(run_env, dump)
    day_seconds, day_peak = timed(["scripts/run_day.sh", DAY], run_env, work / "logs" / "northwind-day.log")
    day_copy = copy_baseline(run_env, source_tables(run_env), work / "copy")
    day_copy_seconds = day_copy["out_seconds"] + day_copy["in_seconds"]
    say(f"northwind day: {day_seconds:.2f} s (COPY of the same tables: {day_copy_seconds:.3f} s)")

    say(f"scaled source: SCALE={scale}")
    fresh_databases(run_env, dump)
    shutil.rmtree(data_dir, ignore_errors=True)
    scaled_csv = work / "order_details.csv"
    csv_rows = write_scaled_csv(details, scaled_csv, scale)
    scale_source(run_env, scaled_csv, scale)
    # The scaled ids need a wider order_id than the declared smallint.
    schema = json.loads(DETAILS_SCHEMA.read_text())
    schema["properties"]["order_id"]["x-sql-datatype"] = "integer"
    write_text_atomic(work / "order_details.schema.json", json.dumps(schema, indent=2))
    files = [
        {
            "stream": "order_details",
            "path": str(scaled_csv),
            "schema": str(work / "order_details.schema.json"),
            "key_properties": ["order_id", "product_id"],
        }
    ]
    scaled_env = {**run_env, "ORDER_DETAILS_CSV": str(scaled_csv), "TAP_ORDER_DETAILS_FILES": json.dumps(files)}

    copy_pg = copy_baseline(scaled_env, source_tables(scaled_env), work / "copy")
    copy_csv = csv_copy_baseline(scaled_env, scaled_csv)
    say(
        f"COPY: source tables {copy_pg['rows']} rows out {copy_pg['out_seconds']:.2f} s, "
        f"in {copy_pg['in_seconds']:.2f} s; CSV source {copy_csv['rows']} rows in {copy_csv['in_seconds']:.2f} s"
    )

    measured: dict[str, tuple[float, float]] = {}
    for job in JOBS:
        say(f"running {job} ...")
        measured[job] = timed([meltano, "run", job], {**scaled_env, "PIPELINE_DATE": DAY}, work / "logs" / f"{job}.log")
    pg_rows = receipt_rows(data_dir, "postgres-to-lfs")
    csv_job_rows = receipt_rows(data_dir, "csv-to-lfs")
    if csv_job_rows != csv_rows or pg_rows != copy_pg["rows"]:
        sys.exit(f"bench: row counts differ: jobs {pg_rows}/{csv_job_rows}, sources {copy_pg['rows']}/{csv_rows}")
    copy_in_all = (copy_pg["rows"] + copy_csv["rows"]) / (copy_pg["in_seconds"] + copy_csv["in_seconds"])
    jobs = [
        job_entry("postgres-to-lfs", pg_rows, *measured["postgres-to-lfs"], copy_pg["rows"] / copy_pg["out_seconds"]),
        job_entry("csv-to-lfs", csv_rows, *measured["csv-to-lfs"], copy_csv["rows"] / copy_csv["in_seconds"]),
        job_entry("lfs-to-analytics", pg_rows + csv_rows, *measured["lfs-to-analytics"], copy_in_all),
    ]
    shutil.rmtree(data_dir)  # the logs stay in work/logs, for a look at where the time went
    scaled_csv.unlink()
    return {
        "scale": scale,
        "taken_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "northwind_day_seconds": round(day_seconds, 2),
        "northwind_day_peak_rss_mb": day_peak,
        "northwind_day_copy_seconds": round(day_copy_seconds, 3),
        "jobs": jobs,
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
    with psycopg.connect(conninfo(SOURCE, project_env(PROJECT_ROOT), database="postgres", admin=True)) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    system = f"Linux {platform.release()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores {model}, {system}, PostgreSQL {server}"


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
    lines.append(
        f"northwind day (make run): {result['northwind_day_seconds']:.2f} s, "
        f"COPY of the same tables {result['northwind_day_copy_seconds']:.3f} s"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1000, help="replicas of orders and order_details (default 1000)")
    parser.add_argument("--source-db", default="bench_source", help="throwaway source database (dropped at the end)")
    parser.add_argument("--analytics-db", default="bench_analytics", help="throwaway analytics database (dropped)")
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be at least 1")
    env = {
        **project_env(PROJECT_ROOT),
        f"{SOURCE}_DATABASE": args.source_db,
        f"{ANALYTICS}_DATABASE": args.analytics_db,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    os.environ["MELTANO_PROJECT_ROOT"] = str(PROJECT_ROOT)  # a relative DATA_DIR is the project's
    bench_dir = resolve_data_dir(env.get("DATA_DIR") or "data") / "bench"
    try:
        result = run_bench(args.scale, env, bench_dir, lambda text: print(f"bench: {text}", flush=True))
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
