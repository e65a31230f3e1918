"""Issue 19's cost: a large table with an indexed key and 1,000 rows changed since the previous day.

The source gets a schema ``bench_changes`` with one table ``events`` (``--changes-rows``
rows, default 2,000,000; a ``version`` key raised on every change, indexed), and the
jobs read only that schema (``TAP_POSTGRES_FILTER_SCHEMAS``). ``INCREMENTAL`` by
``version``: a first day (the full load), then 1,000 rows updated, then the measured
day; ``FULL_TABLE``: the same source on a day of its own. Both measured days read the
same rows.

The data phase, without process start-up, is what the plugins time of their own work
and log (``in N s``): step 1 the tap's COPY of the table (and for INCREMENTAL its end
bookmarks, the key's maximum read in the snapshot); step 2 target-analytics' load of
the table's file (the COPY into the keyed table, its key built). The goal of issue 19:
INCREMENTAL at most 5% of FULL_TABLE.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.memory import PROJECT_ROOT, timed
from pipeline.core.connections import SOURCE, conninfo
from pipeline.jobs import DAY_JOBS, STEP2_JOB
from pipeline.setup.replication import STEP1_SOURCE_JOB

SCHEMA, TABLE, KEY = "bench_changes", "events", "version"
CHANGED = 1_000
DEFAULT_ROWS = 2_000_000
FIRST, MEASURED, FULL = dt.date(2024, 2, 1), dt.date(2024, 2, 2), dt.date(2024, 2, 3)
INCREMENTAL_TABLES = {SCHEMA: {TABLE: {"replication-method": "INCREMENTAL", "replication-key": KEY}}}
_SECONDS = re.compile(r" in (\d+\.\d+) s")


def _create_source(env: dict[str, str], rows: int) -> None:
    """The table, filled, keyed, its ``version`` indexed, readable by the jobs' reader."""
    reader = sql.Identifier(env[f"{SOURCE}_USER"])
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
        table = sql.Identifier(SCHEMA, TABLE)
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigint PRIMARY KEY, version bigint NOT NULL, amount numeric(12, 2), note text)"
            ).format(table)
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} SELECT i, i, i %% 1000 / 7.0, md5(i::text) FROM generate_series(1, %s) AS i"
            ).format(table),
            (rows,),
        )
        conn.execute(sql.SQL("CREATE INDEX ON {} ({})").format(table, sql.Identifier(KEY)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(SCHEMA), reader))
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, reader))
        conn.execute(sql.SQL("ANALYZE {}").format(table))


def _change_rows(env: dict[str, str], rows: int) -> None:
    """``CHANGED`` rows spread over the table, each given a new, higher version."""
    step = max(rows // CHANGED, 1)
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "UPDATE {} SET version = %s::bigint + id, note = 'changed' "
                "WHERE id %% %s::bigint = 0 AND id <= %s::bigint * %s"
            ).format(sql.Identifier(SCHEMA, TABLE)),
            (rows, step, step, CHANGED),
        )


def _seconds(log: Path, *texts: str) -> float:
    """The ``in N s`` of the first log line holding every one of ``texts`` (a plugin timing its own work)."""
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if all(text in line for text in texts) and (found := _SECONDS.search(line)):
            return float(found.group(1))
    raise SystemExit(f"bench: {log} has no line with {texts} and its seconds")


def _day(env: dict[str, str], day: dt.date, logs: Path, mode: str) -> dict[str, float]:
    """The three jobs for ``day``; the table's data phase of step 1 and step 2 from their logs."""
    paths = {}
    for job in DAY_JOBS.order:
        paths[job] = logs / f"changes-{mode}-{day}-{job}.log"
        meltano = str(PROJECT_ROOT / ".venv" / "bin" / "meltano")
        timed([meltano, "run", job], {**env, "PIPELINE_DATE": day.isoformat()}, paths[job])
    step1 = _seconds(paths[STEP1_SOURCE_JOB], "Copied ", f"of {SCHEMA}-{TABLE} to ")
    if mode == "INCREMENTAL":
        step1 += _seconds(paths[STEP1_SOURCE_JOB], "Read the end bookmarks")
    if mode == "LOG_BASED":
        step1 += _seconds(paths[STEP1_SOURCE_JOB], "Read the LOG_BASED changes")
    step2 = _seconds(paths[STEP2_JOB], "Copied ", f".{TABLE}.csv into ")
    return {"step1_seconds": round(step1, 3), "step2_seconds": round(step2, 3)}


def _rows(data_dir: Path, day: dt.date) -> int:
    receipt = json.loads((data_dir / "_runs" / STEP1_SOURCE_JOB / f"{day}.json").read_text())
    return sum(entry["rows"] for entry in receipt["tables"].values())


def base_env(env: dict[str, str], work: Path, data_dir: Path) -> dict[str, str]:
    """The jobs' settings for the table's days: only its schema, a two-line CSV source; ``data_dir`` emptied."""
    details = work / "changes-details.csv"
    with Path(env["ORDER_DETAILS_CSV"]).open(encoding="utf-8") as source:
        details.write_text(source.readline() + source.readline(), encoding="utf-8")
    shutil.rmtree(data_dir, ignore_errors=True)  # a previous run's receipts would make these days past days
    return {**env, "TAP_POSTGRES_FILTER_SCHEMAS": json.dumps([SCHEMA]), "ORDER_DETAILS_CSV": str(details)}


def changes_bench(env: dict[str, str], work: Path, rows: int, say: Callable[[str], None]) -> dict[str, Any]:
    """The measured days of both modes (module docstring); the source's databases must exist (``fresh_databases``)."""
    say(f"changes: a table of {rows} rows, {CHANGED} changed since the previous day, INCREMENTAL and FULL_TABLE ...")
    _create_source(env, rows)
    data_dir = work / "changes-data"
    base = base_env(env, work, data_dir)
    incremental_env = {
        **base,
        "DATA_DIR": str(data_dir / "incremental"),
        "TAP_POSTGRES_TABLES": json.dumps(INCREMENTAL_TABLES),
    }
    _day(incremental_env, FIRST, work / "logs", "INCREMENTAL")
    _change_rows(env, rows)
    incremental = _day(incremental_env, MEASURED, work / "logs", "INCREMENTAL")
    full = _day({**base, "DATA_DIR": str(data_dir / "full"), "TAP_POSTGRES_TABLES": ""}, FULL, work / "logs", "FULL")
    result = {
        "rows": rows,
        "changed": CHANGED,
        "incremental": {**incremental, "rows_read": _rows(data_dir / "incremental", MEASURED)},
        "full_table": {**full, "rows_read": _rows(data_dir / "full", FULL)},
    }
    total = {
        mode: result[mode]["step1_seconds"] + result[mode]["step2_seconds"] for mode in ("incremental", "full_table")
    }
    result["incremental_share_of_full_table"] = round(total["incremental"] / total["full_table"], 4)
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))
    return result


def _mode_line(label: str, figures: dict[str, Any]) -> str:
    """One mode's printed line: the data phase of steps 1 and 2 and the rows it read."""
    return (
        f"  {label:<12} step 1 {figures['step1_seconds']:.3f} s, step 2 {figures['step2_seconds']:.3f} s, "
        f"{figures['rows_read']} rows read"
    )


def changes_lines(result: dict[str, Any]) -> list[str]:
    """The printed lines: each mode's data phase of steps 1 and 2, and the share."""
    lines = [f"a table of {result['rows']} rows, {result['changed']} changed since the previous day (data phase):"]
    lines += [_mode_line("FULL_TABLE", result["full_table"]), _mode_line("INCREMENTAL", result["incremental"])]
    lines.append(f"  INCREMENTAL / FULL_TABLE: {result['incremental_share_of_full_table']:.2%} (goal <= 5%)")
    if "log_based" in result:  # bench.log_changes: on a wal_level=logical cluster of its own
        lines.append("  on a throwaway wal_level=logical cluster (the same table and changes):")
        lines += [_mode_line("FULL_TABLE", result["log_full_table"]), _mode_line("LOG_BASED", result["log_based"])]
        lines.append(f"  LOG_BASED / FULL_TABLE: {result['log_based_share_of_full_table']:.2%} (goal <= 5%)")
    return lines
