r"""Step 2's parts, each timed on its own: the load, the publish, the export.

The job runs them as tasks of one ``meltano run`` whose names may change; the bench
times what each part is, whatever its task is called: the load is ``meltano run
tap-lfs target-analytics`` (the Singer pair, with the job's environment), the publish
and the export are :func:`pipeline.warehouse.publish.publish_day` and
:func:`pipeline.warehouse.export.export_day` called in this process, as ``pipeline``'s command
line does. They run after the whole job, as a rerun of the same day, on the same
files; the export is then set beside psql's ``\copy`` of the same two queries.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from bench.copy_baseline import export_baseline
from bench.memory import PROJECT_ROOT, timed
from bench.source import line_count
from pipeline.core.connections import ANALYTICS, connect
from pipeline.days.receipts import read_day
from pipeline.warehouse.day_change import DEFAULT_LOCK_TIMEOUT
from pipeline.warehouse.export import export_day
from pipeline.warehouse.publish import publish_day
from pipeline.warehouse.result_view import RESULT_VIEW
from pipeline.warehouse.results import result_files

LOAD = ("tap-lfs", "target-analytics")


def _no_run_lock(*_: object) -> None:
    """The commit points' check: the bench times the steps themselves, holding no run lock."""


def _part(name: str, rows: int, seconds: float, **extra: float) -> dict[str, Any]:
    return {"part": name, "rows": rows, "seconds": round(seconds, 2), **extra}


def _with_rate(part: dict[str, Any], rows: int, seconds: float) -> dict[str, Any]:
    return {**part, "rows_per_s": round(rows / seconds)}


def _json_rows(path: Path) -> int:
    """Rows of the export's JSON file: one per line between ``[`` and ``]``."""
    return max(line_count(path) - 2, 0)


def time_parts(env: dict[str, str], data_dir: Path, day: dt.date, step1_jobs: list[str], logs: Path) -> list[dict]:
    """``[load, publish, export]`` of one day, as latest.json lists them; the export with ``psql_seconds``."""
    receipts = read_day(data_dir, day, step1_jobs)
    loaded = sum(table.rows for table in receipts)
    meltano = str(PROJECT_ROOT / ".venv" / "bin" / "meltano")
    load_seconds = timed([meltano, "run", *LOAD], {**env, "PIPELINE_DATE": day.isoformat()}, logs / "load.log").seconds

    with connect(ANALYTICS, env) as conn:
        start = time.perf_counter()
        published = publish_day(conn, day, receipts, DEFAULT_LOCK_TIMEOUT, _no_run_lock)
        publish_seconds = time.perf_counter() - start
    published_rows = sum(published.rows.values())

    with connect(ANALYTICS, env) as conn:
        start = time.perf_counter()
        export_day(conn, day, data_dir, _no_run_lock)
        export_seconds = time.perf_counter() - start
    json_name = f"{RESULT_VIEW}.json"
    exported = _json_rows((result_files(data_dir, day, [json_name]) or {})[json_name])
    psql_seconds = export_baseline(env, day, logs.parent / "export-baseline")  # psql writes local files
    return [
        _with_rate(_part("load", loaded, load_seconds), loaded, load_seconds),
        _with_rate(_part("publish", published_rows, publish_seconds), published_rows, publish_seconds),
        _part("export", exported, export_seconds, psql_seconds=round(psql_seconds, 2)),
    ]
