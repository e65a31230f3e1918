"""Load the DAG folder with Airflow's DagBag and print what the tests check, as JSON.

Run with the Airflow plugin's own interpreter (.meltano/utilities/airflow/venv/bin/python):
Airflow cannot be imported into the project's venv (it needs another SQLAlchemy than
Meltano), so the pytest process asks this script and asserts on its answer. A script
instead of pytest inside Airflow's venv keeps `make test` one pytest run in one venv.

Usage: python dagbag_report.py DAGS_FOLDER
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def describe_task(task: Any) -> dict[str, Any]:
    """The facts about one task that the integrity tests look at."""
    info: dict[str, Any] = {
        "type": type(task).__name__,
        "upstream": sorted(task.upstream_task_ids),
        "downstream": sorted(task.downstream_task_ids),
        "retries": task.retries,
        "retry_delay_seconds": task.retry_delay.total_seconds(),
        "owner": task.owner,
        "queue": task.queue,
        "has_failure_callback": bool(task.on_failure_callback),
        "has_retry_callback": bool(task.on_retry_callback),
        "retry_exponential_backoff": task.retry_exponential_backoff,
        "execution_timeout_seconds": task.execution_timeout.total_seconds() if task.execution_timeout else None,
        "max_active_tis_per_dag": task.max_active_tis_per_dag,
        "outlets": sorted(f"{type(a).__name__}:{getattr(a, 'uri', None) or a.name}" for a in task.outlets),
        "inlets": sorted(f"{type(a).__name__}:{getattr(a, 'uri', None) or a.name}" for a in task.inlets),
    }
    for name in ("job", "root", "meltano", "mode", "upstream_dag_id", "upstream_job", "upstream_dag_ids", "soft_fail"):
        if hasattr(task, name):
            value = getattr(task, name)
            info[name] = list(value) if isinstance(value, (list, set, tuple)) else value
    for name in ("timeout", "poke_interval"):
        if hasattr(task, name):
            info[name] = getattr(task, name)
    return info


def main(dags_folder: str) -> None:
    """Print {import_errors, parse_seconds, dags} for ``dags_folder``."""
    from airflow.dag_processing.dagbag import DagBag

    started = time.monotonic()
    bag = DagBag(dag_folder=dags_folder)
    seconds = time.monotonic() - started
    report = {
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "parse_seconds": seconds,
        "dags": {
            dag_id: {
                "timetable": repr(dag.timetable),
                "timetable_type": type(dag.timetable).__name__,
                "tags": sorted(dag.tags),
                "catchup": dag.catchup,
                "max_active_runs": dag.max_active_runs,
                "doc_md": dag.doc_md,
                "params": {k: dag.params.get_param(k).value for k in dag.params},
                "fileloc": dag.fileloc,
                "tasks": {task.task_id: describe_task(task) for task in dag.tasks},
            }
            for dag_id, dag in bag.dags.items()
        },
    }
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
