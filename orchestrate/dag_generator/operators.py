"""The operators of the generated DAGs: a Meltano job, the same-day sensor, the step-1 (re)start.

A day is a day: every task works on the UTC date of its run's logical date
(``outcome.day_of``), whatever its time of day, so a run triggered from the UI at
09:42 and one triggered by the CLI at 09:42:05 belong to the same day. A run without
a logical date (an API/CLI trigger that set none) is refused with one line: there
is no day to process, and guessing one (the trigger time) would silently process a
day nobody asked for.

The upstream runs are found through the task SDK's execution API
(``supervisor.previous_dag_run``: the latest run of a DAG before an instant, by
logical date, which is unique per DAG), asked for the instant the day ends: the
answer is that DAG's latest run of the day if its logical date falls on the day.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, AssetAlias, BaseOperator, BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowTaskTimeout

from dag_generator.job_env import job_environment
from dag_generator.outcome import Decision, UpstreamRun, classify, day_end, day_of, read_failures, upstream_verdict
from dag_generator.plan import (
    FORCE_OLD_DAY_ENV,
    FORCE_OLD_DAY_PARAM,
    JOB_TIMEOUT_ENV,
    TABLE_PLACEHOLDER,
    AssetSpec,
)
from dag_generator.supervisor import previous_dag_run, trigger_dag_run
from dag_generator.texts import failure_line
from pipeline.core.errors import FAILURE_FILE_ENV, first_line
from pipeline.core.store import data_root
from pipeline.days.layout import receipt_path

log = logging.getLogger(__name__)

RERUN_PARAM = "rerun_step1"
# How long a stopped job's processes get to end on SIGTERM before SIGKILL ends them.
STOP_GRACE_SECONDS = 10


def receipt_file(root: Path, env: dict[str, str], job: str, day: dt.date) -> Path:
    """The receipt ``job`` publishes for ``day`` under the project's DATA_DIR, on local disk or in a bucket.

    ``env`` is the job's environment (``job_environment``): DATA_DIR and the ``AWS_*``
    settings as the job itself gets them; a relative DATA_DIR is relative to ``root``.
    """
    data_dir = data_root(env.get("DATA_DIR") or "data", {**env, "MELTANO_PROJECT_ROOT": str(root)})
    return receipt_path(data_dir, job, day)


def receipt_time(receipt: Path) -> dt.datetime | None:
    """When ``receipt`` was written: its file's mtime, or its object's LastModified in a bucket; None: not yet."""
    try:
        return dt.datetime.fromtimestamp(receipt.stat().st_mtime, dt.UTC)
    except FileNotFoundError:
        return None


class NoLogicalDateError(AirflowFailException):
    """A run without a logical date: there is no day to process (fails at once, no retry)."""


def run_day(context: Any) -> dt.date:
    """The day of the task's run; refuse an undated run with one line that says how to give it one."""
    dag_run = context["dag_run"]
    day = day_of(dag_run.logical_date)
    if day is None:
        raise NoLogicalDateError(
            f"refused: this run of {dag_run.dag_id} has no logical date, so it has no day to process. "
            f"Trigger it with one (UI: Trigger, keep the Logical Date; CLI: meltano invoke airflow dags trigger "
            f"{dag_run.dag_id} --logical-date 2024-01-02T00:00:00+00:00), or backfill a range."
        )
    return day


def latest_run_of_day(dag_id: str, day: dt.date) -> Any | None:
    """The run of ``dag_id`` with the latest logical date on ``day`` (UTC), or None."""
    run = previous_dag_run(dag_id, day_end(day))
    if run is None or day_of(run.logical_date) != day:
        return None
    return run


# Airflow runs callbacks inside a collapsed "Post Execute" group of the UI's log view;
# closing it first keeps the lines that say why in sight, at the end of the log.
END_GROUP = "::endgroup::"


def log_failure_lines(context: Any) -> None:
    """``on_failure_callback``/``on_retry_callback``: the log ends with the cause, then the rerun line."""
    log.info(END_GROUP)
    exc = context.get("exception")
    task = context["task"]
    cause = first_line(exc) if exc is not None else type(exc).__name__
    log.error("CAUSE: %s", cause)
    day = day_of(context["dag_run"].logical_date)
    if day is not None:
        log.error("%s", failure_line(task.task_id, day.isoformat()))


class MeltanoJobOperator(BaseOperator):
    """Run ``meltano run <job>`` for the run's day; map its recorded failure class to Airflow's.

    A permanent failure raises AirflowFailException (no retry); a transient one, or a
    crash with no record, a plain AirflowException (retried with exponential backoff).
    A run longer than the task's ``execution_timeout`` is stopped, process group and
    all (:meth:`on_kill`), and retried like a transient failure.
    On success, attach the assets discovered at run time (one per table of the day's
    receipt) to their AssetAlias, with the day in the event's extra.
    """

    ui_color = "#d6eaf8"

    def __init__(self, *, job: str, root: Path, meltano: Path, writes: Sequence[AssetSpec] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.root = Path(root)
        self.meltano = Path(meltano)
        self.writes = tuple(writes)
        self._process: subprocess.Popen[str] | None = None

    def execute(self, context: Any) -> None:
        """Run the job; raise the failure's class with its one-line cause."""
        day = run_day(context)
        env = job_environment(self.root, os.environ)
        with tempfile.TemporaryDirectory(prefix="pipeline-failure-") as tmp:
            failure_file = Path(tmp) / "failures.jsonl"
            env.update({"PIPELINE_DATE": day.isoformat(), FAILURE_FILE_ENV: str(failure_file)})
            if (context["dag_run"].conf or {}).get(FORCE_OLD_DAY_PARAM):
                env[FORCE_OLD_DAY_ENV] = "1"
            self.log.info("PIPELINE_DATE=%s %s run %s (in %s)", day, self.meltano, self.job, self.root)
            try:
                exit_code = self._run([str(self.meltano), "run", self.job], env)
            except AirflowTaskTimeout as exc:
                raise AirflowTaskTimeout(
                    f"timeout: job {self.job} for {day} ran longer than {self.execution_timeout} "
                    f"({JOB_TIMEOUT_ENV}) and was stopped with its processes"
                ) from exc
            records = read_failures(failure_file)
        if exit_code != 0:
            outcome = classify(self.job, exit_code, records)
            if outcome.transient:
                raise AirflowException(f"transient failure, retried: {outcome.cause}")
            raise AirflowFailException(f"permanent failure, not retried: {outcome.cause}")
        self._attach_tables(context, env, day)

    def _run(self, argv: list[str], env: dict[str, str]) -> int:
        """Run ``argv`` in the project root, its output line by line into the task log."""
        self._process = subprocess.Popen(
            argv,
            cwd=self.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.log.info("%s", line.rstrip())
        return self._process.wait()

    def on_kill(self) -> None:
        """Stop the job's whole process group (Meltano and its plugins) with the task; SIGKILL what outlives the grace.

        Nothing of the group may outlive the task: a plugin left running would hold the
        day's locks, and a retry would wait for it.
        """
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(STOP_GRACE_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)

    def _attach_tables(self, context: Any, env: dict[str, str], day: dt.date) -> None:
        """One asset event per table of the receipt, on each ``{folder}`` alias; the day on every event."""
        events = context["outlet_events"]
        extra = {"day": day.isoformat()}
        for spec in self.writes:
            if spec.tables_from is None:
                events[Asset(spec.uri)].extra = extra
                continue
            receipt = receipt_file(self.root, env, spec.tables_from, day)
            try:
                folders = sorted(json.loads(receipt.read_text(encoding="utf-8")).get("tables") or {})
            except (OSError, ValueError) as exc:
                self.log.warning("lineage: no tables for %s from %s (%s)", spec.uri, receipt, exc)
                continue
            for folder in folders:
                events[AssetAlias(spec.alias_name)].add(Asset(spec.uri.replace(TABLE_PLACEHOLDER, folder)), extra=extra)


class SameDayRunSensor(BaseSensorOperator):
    """Wait for the upstream job's day: the newer of its receipt and its DAG's latest run of the day decides.

    A day published outside Airflow (``make run``) is accepted at once; a newest run that
    failed fails the sensor at once; see ``outcome.upstream_verdict``. Its ``timeout``
    bounds the wait.
    """

    ui_color = "#fdebd0"

    def __init__(self, *, upstream_dag_id: str, upstream_job: str, root: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream_dag_id = upstream_dag_id
        self.upstream_job = upstream_job
        self.root = Path(root)

    def poke(self, context: Any) -> bool:
        """True when the upstream day is done; AirflowFailException when its newest run failed."""
        day = run_day(context)
        receipt_at = receipt_time(
            receipt_file(self.root, job_environment(self.root, os.environ), self.upstream_job, day)
        )
        run = latest_run_of_day(self.upstream_dag_id, day)
        seen = None
        if run is not None:
            seen = UpstreamRun(run.run_id, str(getattr(run.state, "value", run.state)), run.start_date)
        verdict = upstream_verdict(receipt_at, seen)
        self.log.info("%s for %s: %s: %s", self.upstream_job, day, verdict.reason, verdict.decision.value)
        if verdict.decision is Decision.FAIL:
            raise AirflowFailException(f"upstream DAG {self.upstream_dag_id} failed for {day}: {verdict.reason}")
        return verdict.decision is Decision.ACCEPT


def log_upstream_failure(context: Any) -> None:
    """``on_failure_callback`` of a sensor: name the upstream DAG and day, and the one action that reruns it."""
    task = context["task"]
    dag_run = context["dag_run"]
    day = day_of(dag_run.logical_date)
    log.info(END_GROUP)
    log.error(
        "FAILED: %s waits for DAG %s, whose latest run of %s failed or did not finish in time. "
        'Rerun the whole day: trigger %s for %s with {"%s": true} (UI: Trigger; CLI: see orchestrate/README.md).',
        task.dag_id,
        task.upstream_dag_id,
        day or "this run (no logical date)",
        task.dag_id,
        day,
        RERUN_PARAM,
    )


class StartDayRuns(BaseOperator):
    """With param ``rerun_step1``: (re)start the upstream DAGs' runs of this run's day, which the sensors then wait for.

    For each upstream DAG, its latest finished run of the day is cleared (it runs
    again, same run, same day); a day with no run gets one, with this run's logical
    date; a run still queued or running is left alone. Without the param: nothing.
    """

    ui_color = "#e8daef"

    def __init__(self, *, upstream_dag_ids: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.upstream_dag_ids = tuple(upstream_dag_ids)

    def execute(self, context: Any) -> None:
        """Start or clear each upstream run of the day."""
        day = run_day(context)
        if not context["params"].get(RERUN_PARAM):
            self.log.info("%s is false: waiting for the upstream runs of %s as they are", RERUN_PARAM, day)
            return
        for dag_id in self.upstream_dag_ids:
            run = latest_run_of_day(dag_id, day)
            if run is not None and str(getattr(run.state, "value", run.state)) not in ("success", "failed"):
                self.log.info("%s: run %s of %s is still %s: left alone", dag_id, run.run_id, day, run.state)
                continue
            if run is None:
                run_id, logical_date = f"{RERUN_PARAM}__{context['run_id']}", context["dag_run"].logical_date
            else:
                run_id, logical_date = run.run_id, run.logical_date
            error = trigger_dag_run(dag_id, run_id, logical_date, reset=run is not None)
            if error is not None:
                raise AirflowException(f"could not start {dag_id} for {day}: {error}")
            self.log.info("%s: %s run %s for %s", dag_id, "cleared" if run else "started", run_id, day)
