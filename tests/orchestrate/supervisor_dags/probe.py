"""The DAGs of tests/orchestrate/test_supervisor.py: ``upstream`` does nothing, ``probe`` asks about its runs.

``probe``'s task calls ``dag_generator.supervisor`` as the generated DAGs' operators
do, and writes what it was answered, as JSON, to the file ``$SUPERVISOR_ANSWERS``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from dag_generator.supervisor import previous_dag_run, trigger_dag_run

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
STARTED_RUN = "started-by-probe"
STARTED_AT = dt.datetime(2024, 1, 3, 5, tzinfo=dt.UTC)


def describe(run: Any | None) -> dict[str, str] | None:
    """A run as the test compares it."""
    if run is None:
        return None
    state = str(getattr(run.state, "value", run.state))  # as StartDayRuns reads it
    return {"run_id": run.run_id, "logical_date": run.logical_date.isoformat(), "state": state}


with DAG("upstream", schedule=None, start_date=START):

    @task
    def nothing() -> None:
        """Nothing: the run itself is what the probe asks about."""

    nothing()


with DAG("probe", schedule=None, start_date=START):

    @task
    def ask(logical_date: dt.datetime) -> None:
        """Find upstream's run before the next midnight; clear it; start another run twice."""
        found = previous_dag_run("upstream", logical_date.replace(hour=0) + dt.timedelta(days=1))
        answers = {
            "found": describe(found),
            "before_its_own_instant": describe(previous_dag_run("upstream", found.logical_date)) if found else None,
            "cleared": trigger_dag_run("upstream", found.run_id, found.logical_date, reset=True) if found else "-",
            "started": trigger_dag_run("upstream", STARTED_RUN, STARTED_AT, reset=False),
            "started_again": trigger_dag_run("upstream", STARTED_RUN, STARTED_AT, reset=False),
        }
        Path(os.environ["SUPERVISOR_ANSWERS"]).write_text(json.dumps(answers, default=str))

    ask()
