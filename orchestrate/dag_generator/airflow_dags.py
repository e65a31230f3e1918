"""Build Airflow DAG objects from DagSpecs: the only module here that imports Airflow.

Each DAG is ``[wait-for-<upstream dag>, ...] >> <job>``: reschedule-mode sensors
(a waiting sensor frees its worker slot, which matters with parallelism 4 on 2
cores) that wait for the upstream DAG run of the same logical date to succeed and
fail at once, without retries, when it failed. ``soft_fail`` stays off: a skipped
sensor would make a day whose input failed look like a success.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException

from dag_generator.plan import DagSpec, Plan, failure_line

log = logging.getLogger(__name__)


class NoLogicalDateError(AirflowFailException):
    """A run without a logical date: there is no day to process.

    An AirflowFailException, so the task fails at once instead of retrying what
    cannot succeed.
    """


def _no_date_message(dag_id: str) -> str:
    return (
        f"refused: this run of {dag_id} has no logical date, so it has no day to process. "
        f"Trigger it with one: meltano invoke airflow dags trigger {dag_id} --logical-date 2024-01-02T00:00:00+00:00 "
        "(or in the UI: Trigger, then set the logical date), or backfill a range."
    )


def require_logical_date(dag_run: Any) -> str:
    """Template macro: nothing for a dated run; for an undated one, fail the rendering with why."""
    if getattr(dag_run, "logical_date", None) is None:
        raise NoLogicalDateError(_no_date_message(getattr(dag_run, "dag_id", "this DAG")))
    return ""


def same_logical_date(logical_date: dt.datetime, dag_run: Any = None, **_: Any) -> dt.datetime:
    """Return the upstream logical date to wait for: the same one (the sensors' ``execution_date_fn``).

    Airflow would fall back to the trigger time for an undated run, which no
    upstream run matches, and the sensor would wait until its timeout: refuse instead.
    """
    if dag_run is not None and dag_run.logical_date is None:
        raise NoLogicalDateError(_no_date_message(dag_run.dag_id))
    return logical_date


def log_failure_line(context: Any) -> None:
    """``on_failure_callback`` of the job task: the log's last line names job, day and the rerun."""
    task = context["task"]
    dag_run = context.get("dag_run")
    day = context.get("ds")
    job = task.task_id  # the job task is named after its job
    if day is None:
        log.error("FAILED: job %s: %s", job, _no_date_message(getattr(dag_run, "dag_id", task.dag_id)))
    else:
        log.error("%s", failure_line(job, day))


def log_upstream_failure(context: Any) -> None:
    """``on_failure_callback`` of a sensor: say which upstream day failed and what to do."""
    task = context["task"]
    day = context.get("ds", "this day")
    log.error(
        "FAILED: %s waits for DAG %s, whose run of %s failed or did not finish in time. "
        "Rerun that day of %s first, then clear this run.",
        task.dag_id,
        task.external_dag_id,
        day,
        task.external_dag_id,
    )


def build_dag(spec: DagSpec) -> DAG:
    """Build the DAG of one schedule."""
    dag = DAG(
        dag_id=spec.dag_id,
        description=f"Meltano job {spec.job} for the run's logical date (PIPELINE_DATE={{{{ ds }}}})",
        schedule=spec.schedule,
        start_date=spec.start_date,
        catchup=spec.catchup,
        # Meltano's system DB is SQLite: two days of one job at once would contend for its lock.
        max_active_runs=1,
        tags=list(spec.tags),
        doc_md=spec.doc_md,
        user_defined_macros={"require_logical_date": require_logical_date},
        default_args={"owner": spec.owner},
    )
    with dag:
        run = BashOperator(
            task_id=spec.job,
            bash_command=spec.bash_command,
            # Meltano's exit code 99 must fail the task, not skip it (BashOperator's default).
            skip_on_exit_code=None,
            retries=spec.retries,
            retry_delay=spec.retry_delay,
            on_failure_callback=log_failure_line,
        )
        for upstream in spec.upstream_dag_ids:
            (
                ExternalTaskSensor(
                    task_id=f"wait-for-{upstream}",
                    external_dag_id=upstream,
                    external_task_id=None,
                    allowed_states=["success"],
                    failed_states=["failed"],
                    execution_date_fn=same_logical_date,
                    mode="reschedule",
                    poke_interval=spec.poke_interval.total_seconds(),
                    timeout=spec.sensor_timeout.total_seconds(),
                    retries=0,
                    soft_fail=False,
                )
                >> run
            )
    return dag


def build_dags(plan: Plan) -> dict[str, DAG]:
    """Every planned DAG by id; the skipped schedules are logged with their reason."""
    for name, reason in plan.skipped.items():
        log.info("schedule %s gets no DAG: %s", name, reason)
    return {spec.dag_id: build_dag(spec) for spec in plan.dags}
