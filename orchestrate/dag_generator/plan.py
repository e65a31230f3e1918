"""Turn a project's schedules into DAG specifications: pure data, no Airflow.

Kept apart from the Airflow objects so that the rules (which schedule becomes a
DAG, what each waits for, what each runs) are tested in milliseconds on any
schedule list, without Airflow installed.

The generator knows no job by name. Dependencies come from data in meltano.yml:
a job's ``annotations.airflow.depends_on`` lists the jobs whose output for the
same day it reads (``annotations`` is Meltano's place for tool-specific keys; the
schema forbids other extra keys). Putting it on the job, not the schedule, says
what is true of the data whatever the timing; the generator then finds the DAG of
each upstream job among the schedules of the same interval, so both sides run for
the same logical date.

Options, in ``annotations.airflow`` of a job, overridden by its schedule's:
``owner``, ``retries``, ``retry_delay_minutes``, ``tags``, ``catchup``,
``sensor_timeout_minutes``, ``poke_interval_seconds``, ``max_active_days``,
``writes`` (text for the DAG's doc), ``enabled`` (false: no DAG); on the job only:
``depends_on`` and ``assets`` (what the job writes, for Airflow's lineage; see
:func:`asset_specs`).

Where a job's tasks run, in a deployment with several Celery workers: ``PIPELINE_JOB_QUEUES``
(environment or ``.env``), e.g. ``postgres-to-lfs=step1 lfs-to-analytics=step2``, puts every task of
a job's DAG (the job's and its sensors) on that Celery queue; a job it does not name keeps Airflow's
default queue. A deployment setting, not the project's: which workers serve which queue is the
deployment's choice (docker-compose.yml's ``distributed`` profile pins the two steps to two workers).

Every task is bounded (README "Operations"): a job's task by
``PIPELINE_JOB_TIMEOUT_MINUTES`` (the same bound ``make run`` applies), a sensor by
``sensor_timeout_minutes``, by default the longest its upstream job can take with all
its retries; and a job runs one day at a time (``max_active_days``), backfills included.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dag_generator.texts import dag_doc
from pipeline.project import ANNOTATION_KEY, Job, Project, ProjectError, Schedule, depends_on

# Meltano's presets that mean "never on a timer": a DAG that runs when triggered.
MANUAL_INTERVALS = frozenset({"@manual", "@none"})
# Spellings of one cron schedule, so `@daily` and `0 0 * * *` count as the same interval.
CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# Before any data this project has; only bounds backfills, as catchup is off.
DEFAULT_START_DATE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
DEFAULTS: dict[str, Any] = {
    "owner": "data-engineering",
    "retries": 2,
    "retry_delay_minutes": 5,
    "tags": [],
    "catchup": False,
    # None: the longest the upstream jobs can take with all their retries (see worst_case).
    "sensor_timeout_minutes": None,
    # Step 2 starts within about 2 s of step 1's success. A reschedule-mode poke is a short task
    # (0.1-0.3 s from queued to ended, measured) that frees its slot between pokes; at 10 s the wait
    # for the poke was most of a day through Airflow (docs/performance.md, "A day through Airflow").
    # Not 1 s: the scheduler must have handled one poke's end before the next starts (the race of
    # SENSOR_RETRIES in airflow_dags.py), and a loaded scheduler's loop can take about a second.
    "poke_interval_seconds": 2,
    "writes": None,
    "enabled": True,
    # Days of one job at a time. 1 keeps an incremental source's days in order (a day's window starts
    # where the previous day's receipt ends it: pipeline.bookmarks); more only for a job whose sources
    # are all FULL_TABLE (Meltano's state IDs and the run locks carry the day: days never share them).
    "max_active_days": 1,
}
JOB_ONLY_OPTIONS = frozenset({"depends_on", "assets"})
# The placeholder of an asset URI that stands for each table a job's receipt lists.
TABLE_PLACEHOLDER = "{folder}"
# A run's conf {"force_old_day": true} runs a day older than RETENTION_DAYS all the same: its job
# gets pipeline.core.dates.FORCE_OLD_DAY_ENV=1 (the same name: a test checks it).
FORCE_OLD_DAY_PARAM = "force_old_day"
FORCE_OLD_DAY_ENV = "PIPELINE_FORCE_OLD_DAY"
# The bound of every job's run, in Airflow and in `make run` (scripts/run_day.sh reads the same setting).
JOB_TIMEOUT_ENV = "PIPELINE_JOB_TIMEOUT_MINUTES"
# docs/performance.md: the slowest job measured, lfs-to-analytics at SCALE=1000 (5.1M rows loaded,
# 2.16M exported), took 30-35 s on 2 cores; an hour is a hundred times that, for slower disks and
# bigger sources, yet a hung job frees its day the same hour.
DEFAULT_JOB_TIMEOUT = dt.timedelta(minutes=60)
# Which Celery queue each job's tasks go to (job_queues); unnamed jobs: Airflow's default queue.
JOB_QUEUES_ENV = "PIPELINE_JOB_QUEUES"
# What Celery and Airflow accept in a queue name, and no separator of the setting.
QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Exponential backoff of a transient failure's retries: delay, 2x delay, 4x delay, ..., at most this.
RETRY_BACKOFF = 2.0
MAX_RETRY_DELAY = dt.timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class AssetSpec:
    """An Airflow asset a job writes: a fixed URI, or one per table of a job's receipt (``tables_from``).

    A URI with ``{folder}`` cannot be declared when the DAG is parsed (the tables are
    discovered by the job at run time): it becomes an AssetAlias, named by
    ``alias_name``, to which the task attaches one asset per folder key of the day's
    receipt of job ``tables_from``.
    """

    uri: str
    tables_from: str | None = None

    @property
    def alias_name(self) -> str:
        """The AssetAlias's name: the URI template itself, unique and readable in the UI."""
        return self.uri


@dataclasses.dataclass(frozen=True)
class DagSpec:
    """Everything needed to build one Airflow DAG for one Meltano schedule."""

    dag_id: str
    job: str
    interval: str | None
    schedule: str | None
    start_date: dt.datetime
    catchup: bool
    upstream_dag_ids: tuple[str, ...]
    # The job each upstream DAG runs, whose receipts its sensor also reads.
    upstream_jobs: dict[str, str]
    owner: str
    retries: int
    retry_delay: dt.timedelta
    tags: tuple[str, ...]
    sensor_timeout: dt.timedelta
    poke_interval: dt.timedelta
    execution_timeout: dt.timedelta
    max_active_days: int
    # The Celery queue of every task of the DAG (PIPELINE_JOB_QUEUES); None: Airflow's default.
    queue: str | None
    root: Path
    meltano: Path
    writes: tuple[AssetSpec, ...]
    reads: tuple[AssetSpec, ...]
    doc_md: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """The DAGs to build, and the schedules that get none with the reason why."""

    dags: list[DagSpec]
    skipped: dict[str, str]


def normalized_interval(interval: str | None) -> str | None:
    """One spelling per schedule: cron text for presets, None for manual-only."""
    if interval is None or interval in MANUAL_INTERVALS:
        return None
    text = " ".join(interval.split())
    return CRON_PRESETS.get(text, text)


def airflow_schedule(interval: str | None) -> str | None:
    """Airflow's ``schedule`` for a Meltano interval (``@once`` and cron pass through)."""
    if interval is None or interval in MANUAL_INTERVALS:
        return None
    return interval


def _options(project: Project, schedule: Schedule) -> dict[str, Any]:
    """DEFAULTS, then the job's annotations, then the schedule's; unknown keys are an error."""
    job = project.jobs[schedule.job] if schedule.job else None
    job_ann = dict(job.annotations.get(ANNOTATION_KEY) or {}) if job else {}
    sched_ann = dict(schedule.annotations.get(ANNOTATION_KEY) or {})
    for where, ann, allowed in (
        (f"job {schedule.job}", job_ann, set(DEFAULTS) | JOB_ONLY_OPTIONS),
        (f"schedule {schedule.name}", sched_ann, set(DEFAULTS)),
    ):
        unknown = set(ann) - allowed
        if unknown:
            raise ProjectError(f"{where}: unknown annotations.{ANNOTATION_KEY} keys {sorted(unknown)}")
    job_ann.pop("depends_on", None)
    return {**DEFAULTS, **job_ann, **sched_ann}


def asset_specs(job: Job) -> tuple[AssetSpec, ...]:
    """What ``job`` writes, from ``annotations.airflow.assets``: URIs, or ``{uri, tables_from}`` mappings.

    ``uri`` must have a scheme (``lfs://...``); a ``{folder}`` in it needs
    ``tables_from``, the job whose receipt for the day lists the tables.
    """
    value = (job.annotations.get(ANNOTATION_KEY) or {}).get("assets") or []
    where = f"job {job.name}: annotations.{ANNOTATION_KEY}.assets"
    if not isinstance(value, list):
        raise ProjectError(f"{where} must be a list of URIs or {{uri, tables_from}} mappings")
    specs = []
    for entry in value:
        uri, tables_from = (entry, None) if isinstance(entry, str) else (entry.get("uri"), entry.get("tables_from"))
        if not isinstance(uri, str) or not re.match(r"^[a-z][a-z0-9+.-]*://.+", uri):
            raise ProjectError(f"{where}: {entry!r} is not a URI like lfs://csv/order_details")
        if (TABLE_PLACEHOLDER in uri) != bool(tables_from):
            raise ProjectError(f"{where}: {uri} needs tables_from (a job) exactly when it contains {TABLE_PLACEHOLDER}")
        specs.append(AssetSpec(uri=uri, tables_from=tables_from))
    return tuple(specs)


def _check_acyclic(project: Project) -> None:
    """Sensors on a cycle of jobs would wait for each other forever."""
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            raise ProjectError(f"jobs depend on each other in a cycle: {' -> '.join([*path, name])}")
        state[name] = "active"
        for upstream in depends_on(project.jobs[name]):
            if upstream not in project.jobs:
                raise ProjectError(f"job {name} depends on {upstream!r}, which is not a job")
            visit(upstream, [*path, name])
        state[name] = "done"

    for name in project.jobs:
        visit(name, [])


def job_timeout(environ: Mapping[str, str]) -> dt.timedelta:
    """Every job's bound from ``PIPELINE_JOB_TIMEOUT_MINUTES`` (default 60), or a one-line refusal naming it."""
    value = (environ.get(JOB_TIMEOUT_ENV) or "").strip()
    if not value:
        return DEFAULT_JOB_TIMEOUT
    try:
        minutes = float(value)
    except ValueError:
        minutes = 0.0
    if not minutes > 0:
        raise ProjectError(f"{JOB_TIMEOUT_ENV}={value!r} is not a number of minutes above 0 (unset: 60)")
    return dt.timedelta(minutes=minutes)


def job_queues(environ: Mapping[str, str], jobs: Mapping[str, Job]) -> dict[str, str]:
    """The Celery queue of each job named in ``PIPELINE_JOB_QUEUES``, or a one-line refusal naming it.

    The value is ``job=queue`` pairs separated by spaces or commas; a job that is not in
    ``jobs``, a pair without ``=``, a job named twice or a queue name Celery would not take is refused.
    """
    value = (environ.get(JOB_QUEUES_ENV) or "").strip()
    queues: dict[str, str] = {}
    for pair in re.split(r"[\s,]+", value) if value else []:
        job, sep, queue = pair.partition("=")
        if not sep or not QUEUE_NAME.match(queue):
            raise ProjectError(f"{JOB_QUEUES_ENV}: {pair!r} is not job=queue (a queue: letters, digits, '_', '.', '-')")
        if job not in jobs:
            raise ProjectError(f"{JOB_QUEUES_ENV}: {job!r} is not a job of this project ({', '.join(sorted(jobs))})")
        if job in queues:
            raise ProjectError(f"{JOB_QUEUES_ENV}: job {job} is given a queue twice")
        queues[job] = queue
    return queues


def worst_case(retries: int, retry_delay: dt.timedelta, timeout: dt.timedelta) -> dt.timedelta:
    """The longest a job's task can take: every attempt up to its timeout, and the longest retry delays.

    Airflow's exponential backoff waits between 1x and 2x ``delay * RETRY_BACKOFF ** (try - 1)``.
    """
    delays = sum(
        (min(2 * retry_delay * RETRY_BACKOFF**attempt, MAX_RETRY_DELAY) for attempt in range(retries)),
        dt.timedelta(),
    )
    return (retries + 1) * timeout + delays


def _positive_int(options: dict[str, Any], key: str, where: str) -> int:
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProjectError(f"{where}: annotations.{ANNOTATION_KEY}.{key} must be a whole number of at least 1")
    return value


def _parse_start(schedule: Schedule) -> dt.datetime:
    if not schedule.start_date:
        return DEFAULT_START_DATE
    try:
        start = dt.datetime.fromisoformat(schedule.start_date)
    except ValueError as exc:
        raise ProjectError(f"schedule {schedule.name}: start_date {schedule.start_date!r} is not a date") from exc
    return start if start.tzinfo else start.replace(tzinfo=dt.UTC)


def plan_dags(
    project: Project,
    retries: int | None = None,
    timeout: dt.timedelta = DEFAULT_JOB_TIMEOUT,
    queues: Mapping[str, str] | None = None,
) -> Plan:
    """One DagSpec per enabled schedule that runs a job; the others in ``skipped`` with why.

    Raises ProjectError for what Meltano itself would reject or what cannot run
    safely: a schedule naming an unknown job, a dependency on a job with no DAG of
    the same interval (or with several), a cycle, an unknown option. ``retries``,
    when given, replaces every DAG's (tests set 0: a failure then shows at once).
    ``timeout`` bounds every job's task (:func:`job_timeout`); ``queues`` gives a job's tasks
    their Celery queue (:func:`job_queues`).
    """
    _check_acyclic(project)
    skipped: dict[str, str] = {}
    enabled: list[tuple[Schedule, dict[str, Any]]] = []
    for schedule in project.schedules:
        if not schedule.job:
            skipped[schedule.name] = "runs no job (a legacy extractor/loader schedule)"
            continue
        if schedule.job not in project.jobs:
            raise ProjectError(f"schedule {schedule.name} runs job {schedule.job!r}, which is not defined")
        options = _options(project, schedule)
        if not options["enabled"]:
            skipped[schedule.name] = f"disabled (annotations.{ANNOTATION_KEY}.enabled is false)"
            continue
        if retries is not None:
            options["retries"] = retries
        enabled.append((schedule, options))

    dags = []
    for schedule, options in enabled:
        assert schedule.job is not None
        job = project.jobs[schedule.job]
        interval = normalized_interval(schedule.interval)
        upstream_jobs: dict[str, str] = {}
        upstream_worst = dt.timedelta()
        for upstream_job in depends_on(job):
            candidates = [
                (s, o) for s, o in enabled if s.job == upstream_job and normalized_interval(s.interval) == interval
            ]
            if len(candidates) != 1:
                names = ", ".join(s.name for s, _ in candidates)
                found = "no enabled schedule" if not candidates else f"several schedules ({names})"
                raise ProjectError(
                    f"schedule {schedule.name} runs {job.name}, which depends on {upstream_job}, but {found} "
                    f"runs {upstream_job} at the same interval ({schedule.interval}): the sensor needs exactly one"
                )
            upstream_schedule, upstream_options = candidates[0]
            upstream_jobs[upstream_schedule.name] = upstream_job
            upstream_worst = max(
                upstream_worst,
                worst_case(
                    int(upstream_options["retries"]),
                    dt.timedelta(minutes=float(upstream_options["retry_delay_minutes"])),
                    timeout,
                ),
            )
        upstream = tuple(upstream_jobs)
        sensor_minutes = options["sensor_timeout_minutes"]
        sensor_timeout = upstream_worst if sensor_minutes is None else dt.timedelta(minutes=float(sensor_minutes))
        dags.append(
            DagSpec(
                dag_id=schedule.name,
                job=job.name,
                interval=schedule.interval,
                schedule=airflow_schedule(schedule.interval),
                start_date=_parse_start(schedule),
                catchup=bool(options["catchup"]),
                upstream_dag_ids=upstream,
                upstream_jobs=upstream_jobs,
                owner=str(options["owner"]),
                retries=int(options["retries"]),
                retry_delay=dt.timedelta(minutes=float(options["retry_delay_minutes"])),
                tags=tuple(dict.fromkeys(["meltano", f"job:{job.name}", *map(str, options["tags"])])),
                sensor_timeout=sensor_timeout,
                poke_interval=dt.timedelta(seconds=float(options["poke_interval_seconds"])),
                execution_timeout=timeout,
                max_active_days=_positive_int(options, "max_active_days", f"schedule {schedule.name}"),
                queue=(queues or {}).get(job.name),
                root=project.root,
                meltano=project.root / ".venv" / "bin" / "meltano",
                writes=asset_specs(job),
                reads=tuple(a for u in depends_on(job) for a in asset_specs(project.jobs[u])),
                doc_md=dag_doc(job, schedule, upstream, options["writes"]),
            )
        )
    return Plan(dags=dags, skipped=skipped)
