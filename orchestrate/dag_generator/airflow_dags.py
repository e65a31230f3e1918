"""Build Airflow DAG objects from DagSpecs: with ``operators``, the only modules here that import Airflow.

Each DAG is ``[start-upstream-runs >> wait-for-<upstream dag>, ...] >> <job>``. The
sensors run in reschedule mode (a waiting sensor frees its worker slot, which
matters with parallelism 4 on 2 cores) and poke every 2 s; they decide on
the upstream DAG's latest run of the same UTC day and fail at once, without
retries, when it failed (their retries only cover an Airflow race, see
SENSOR_RETRIES). ``soft_fail`` stays off: a skipped sensor would make a day whose
input failed look like a success. A DAG with upstream DAGs has the param
``rerun_step1``: true makes one trigger (re)run the whole day.

A job's task runs at most ``max_active_days`` days at once through the task's own
``max_active_tis_per_dag``: Airflow 3.3's scheduler counts it over every run of the
DAG, backfill runs included, whereas a backfill's runs are limited by the backfill's
own ``max_active_runs`` (default 10), not the DAG's.
"""

from __future__ import annotations

import logging

from airflow.sdk import DAG, Asset, AssetAlias, Param

from dag_generator.operators import (
    RERUN_PARAM,
    MeltanoJobOperator,
    SameDayRunSensor,
    StartDayRuns,
    log_failure_lines,
    log_upstream_failure,
)
from dag_generator.plan import MAX_RETRY_DELAY, RETRY_BACKOFF, AssetSpec, DagSpec, Plan

log = logging.getLogger(__name__)
# Retries of a sensor, which never cover a failed upstream run (AirflowFailException) or
# the timeout, only Airflow's own race: the scheduler may read the executor's "success"
# of one reschedule-mode poke after the next poke has started, and fail the sensor
# ("finished with state success, but the task instance's state attribute is running";
# apache/airflow#71172, seen here under load).
SENSOR_RETRIES = 2


def airflow_asset(spec: AssetSpec) -> Asset | AssetAlias:
    """A fixed URI is an Asset; a URI with ``{folder}`` an AssetAlias filled in at run time."""
    return AssetAlias(spec.alias_name) if spec.tables_from else Asset(spec.uri)


def build_dag(spec: DagSpec) -> DAG:
    """Build the DAG of one schedule."""
    params = {}
    if spec.upstream_dag_ids:
        params[RERUN_PARAM] = Param(
            False,
            type="boolean",
            title="Rerun step 1 of this day",
            description=(
                "Start (or clear and rerun) the runs of "
                + ", ".join(spec.upstream_dag_ids)
                + " for this run's day, then wait for them: the whole day in one action."
            ),
        )
    dag = DAG(
        dag_id=spec.dag_id,
        description=f"Meltano job {spec.job} for the UTC day of the run's logical date",
        schedule=spec.schedule,
        start_date=spec.start_date,
        catchup=spec.catchup,
        # Scheduled runs; a backfill's are bounded by the job task's max_active_tis_per_dag below.
        max_active_runs=spec.max_active_days,
        tags=list(spec.tags),
        doc_md=spec.doc_md,
        params=params,
        # The queue, for every task of the DAG: a worker that serves it runs the job and its sensors.
        default_args={"owner": spec.owner, **({"queue": spec.queue} if spec.queue else {})},
    )
    with dag:
        run = MeltanoJobOperator(
            task_id=spec.job,
            job=spec.job,
            root=spec.root,
            meltano=spec.meltano,
            writes=spec.writes,
            outlets=[airflow_asset(a) for a in spec.writes],
            inlets=[airflow_asset(a) for a in spec.reads],
            retries=spec.retries,
            retry_delay=spec.retry_delay,
            retry_exponential_backoff=RETRY_BACKOFF,
            max_retry_delay=MAX_RETRY_DELAY,
            execution_timeout=spec.execution_timeout,
            max_active_tis_per_dag=spec.max_active_days,
            on_failure_callback=log_failure_lines,
            on_retry_callback=log_failure_lines,
        )
        if spec.upstream_dag_ids:
            start = StartDayRuns(task_id="start-upstream-runs", upstream_dag_ids=spec.upstream_dag_ids, retries=0)
            for upstream in spec.upstream_dag_ids:
                sensor = SameDayRunSensor(
                    task_id=f"wait-for-{upstream}",
                    upstream_dag_id=upstream,
                    upstream_job=spec.upstream_jobs[upstream],
                    root=spec.root,
                    mode="reschedule",
                    poke_interval=spec.poke_interval.total_seconds(),
                    timeout=spec.sensor_timeout.total_seconds(),
                    retries=SENSOR_RETRIES,
                    retry_delay=spec.poke_interval,
                    soft_fail=False,
                    on_failure_callback=log_upstream_failure,
                )
                start >> sensor >> run
    return dag


def build_dags(plan: Plan) -> dict[str, DAG]:
    """Every planned DAG by id; the skipped schedules are logged with their reason."""
    for name, reason in plan.skipped.items():
        log.info("schedule %s gets no DAG: %s", name, reason)
    return {spec.dag_id: build_dag(spec) for spec in plan.dags}
