"""Other DAGs' runs, asked of the task's supervisor: the one place that touches Airflow's task runner.

Why not a public API: Airflow 3's task SDK lets a task ask about its own DAG's runs
(``TaskInstance.get_previous_dagrun``) and start one run per task by ending it
(``TriggerDagRunOperator``), but a task that finds the latest run of *another* DAG, or
starts or clears the runs of several, can only send the task runner's request messages
(``airflow.sdk.execution_time.comms``) over its supervisor channel
(``task_runner.SUPERVISOR_COMMS``), as Airflow's own operators do. So an upgrade that
changes them breaks here only; ``tests/orchestrate/test_supervisor.py`` runs these
functions in a real task and fails when they stop doing what they say.

Airflow's modules are imported in the functions: only a running task needs them, and
parsing the DAGs stays as cheap as it was.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def previous_dag_run(dag_id: str, before: dt.datetime) -> Any | None:
    """The run of ``dag_id`` with the latest logical date before the instant ``before``, or None."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetPreviousDagRun

    answer = task_runner.SUPERVISOR_COMMS.send(GetPreviousDagRun(dag_id=dag_id, logical_date=before))
    return getattr(answer, "dag_run", None)


def trigger_dag_run(dag_id: str, run_id: str, logical_date: dt.datetime, *, reset: bool) -> Any | None:
    """Start run ``run_id`` of ``dag_id`` (``reset``: clear that existing run, so it runs again); None, or why not.

    Why not is the supervisor's error (``ErrorResponse.error``), e.g. that the run
    already exists when it is not reset.
    """
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun

    message = TriggerDagRun(dag_id=dag_id, run_id=run_id, logical_date=logical_date, conf={}, reset_dag_run=reset)
    answer = task_runner.SUPERVISOR_COMMS.send(message)
    return answer.error if isinstance(answer, ErrorResponse) else None
