"""The generator's rules on schedule lists it was not written for (no Airflow needed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from dag_generator.plan import (
    DEFAULT_JOB_TIMEOUT,
    FORCE_OLD_DAY_ENV,
    JOB_QUEUES_ENV,
    JOB_TIMEOUT_ENV,
    AssetSpec,
    job_queues,
    job_timeout,
    plan_dags,
    worst_case,
)
from dag_generator.texts import failure_line, rerun_command
from pipeline.core import dates as pipeline_dates
from pipeline.core.commands import rerun_command as pipeline_rerun_command
from pipeline.jobs import STEP1_JOBS, STEP2_JOB
from pipeline.project import ProjectError, read_project

PROJECT_ROOT = Path(__file__).resolve().parents[2]

OTHER = """\
version: 1
include_paths:
  - ./more/*.meltano.yml
jobs:
  - name: ingest-a
    tasks: [tap-a target-x]
  - name: ingest-b
    tasks:
      - tap-b target-x
      - [dbt:run]
  - name: report
    annotations:
      airflow:
        depends_on: [ingest-a, ingest-b]
        tags: [reporting]
        retries: 0
    tasks: [dbt:build]
schedules:
  - name: a-every-6h
    interval: "0 */6 * * *"
    job: ingest-a
  - name: b-6h
    interval: "0 */6  * * *"
    job: ingest-b
    start_date: "2023-05-01 00:00:00"
  - name: report-6h
    interval: "0 */6 * * *"
    job: report
    annotations:
      airflow:
        owner: analytics
        retry_delay_minutes: 1
  - name: legacy-elt
    interval: "@hourly"
    extractor: tap-a
    loader: target-x
    transform: skip
  - name: off  # YAML 1.1 would read this as False; Meltano (YAML 1.2) reads "off"
    interval: "@daily"
    job: ingest-a
    annotations:
      airflow:
        enabled: false
  - name: by-hand
    interval: "@manual"
    job: ingest-b
"""


def plan_for(make_project: Callable[..., Path], text: str) -> tuple[Path, object]:
    root = make_project(text)
    return root, plan_dags(read_project(root))


def test_one_dag_per_job_schedule_with_reasons_for_the_rest(make_project: Callable[..., Path]) -> None:
    _, plan = plan_for(make_project, OTHER)
    assert [d.dag_id for d in plan.dags] == ["a-every-6h", "b-6h", "report-6h", "by-hand"]
    assert set(plan.skipped) == {"legacy-elt", "off"}
    assert "no job" in plan.skipped["legacy-elt"]
    assert "disabled" in plan.skipped["off"]


def test_dependencies_come_from_annotations_and_match_the_interval(make_project: Callable[..., Path]) -> None:
    _, plan = plan_for(make_project, OTHER)
    dags = {d.dag_id: d for d in plan.dags}
    # `0 */6  * * *` (two spaces) is the same interval as `0 */6 * * *`.
    assert dags["report-6h"].upstream_dag_ids == ("a-every-6h", "b-6h")
    assert dags["a-every-6h"].upstream_dag_ids == ()
    assert dags["by-hand"].schedule is None


def test_options_defaults_job_then_schedule(make_project: Callable[..., Path]) -> None:
    _, plan = plan_for(make_project, OTHER)
    dags = {d.dag_id: d for d in plan.dags}
    report, ingest = dags["report-6h"], dags["a-every-6h"]
    assert (report.owner, report.retries, report.retry_delay) == ("analytics", 0, dt.timedelta(minutes=1))
    assert report.tags == ("meltano", "job:report", "reporting")
    assert (ingest.owner, ingest.retries, ingest.retry_delay) == ("data-engineering", 2, dt.timedelta(minutes=5))
    assert ingest.catchup is False
    assert dags["b-6h"].start_date == dt.datetime(2023, 5, 1, tzinfo=dt.UTC)


def test_each_dag_runs_its_job_with_the_projects_meltano(make_project: Callable[..., Path]) -> None:
    root, plan = plan_for(make_project, OTHER)
    spec = plan.dags[0]
    assert (spec.job, spec.root, spec.meltano) == ("ingest-a", root, root / ".venv" / "bin" / "meltano")


def test_assets_are_declared_per_job_and_read_downstream(make_project: Callable[..., Path]) -> None:
    text = OTHER.replace(
        "  - name: ingest-a\n    tasks",
        "  - name: ingest-a\n    annotations:\n      airflow:\n        assets:\n"
        "          - lfs://a/all\n          - uri: db://a/{folder}\n            tables_from: ingest-a\n    tasks",
    )
    _, plan = plan_for(make_project, text)
    dags = {d.dag_id: d for d in plan.dags}
    written = (AssetSpec("lfs://a/all"), AssetSpec("db://a/{folder}", tables_from="ingest-a"))
    assert dags["a-every-6h"].writes == written
    assert dags["report-6h"].reads == written  # ingest-b declares none
    assert dags["report-6h"].writes == ()


@pytest.mark.parametrize(
    ("assets", "message"),
    [
        ("[not-a-uri]", "is not a URI"),
        ("['db://a/{folder}']", "needs tables_from"),
        ("{x: 1}", "must be a list"),
    ],
)
def test_bad_asset_declarations_are_refused(make_project: Callable[..., Path], assets: str, message: str) -> None:
    text = OTHER.replace("        tags: [reporting]\n", f"        tags: [reporting]\n        assets: {assets}\n")
    with pytest.raises(ProjectError, match=message):
        plan_dags(read_project(make_project(text)))


def test_rerun_command_is_the_pipelines() -> None:
    assert rerun_command("lfs-to-analytics", "2024-01-02") == pipeline_rerun_command(
        "lfs-to-analytics", dt.date(2024, 1, 2)
    )
    assert failure_line("lfs-to-analytics", "2024-01-02") == (
        "FAILED: job lfs-to-analytics for 2024-01-02. Rerun: PIPELINE_DATE=2024-01-02 "
        ".venv/bin/meltano run lfs-to-analytics  (or clear the task in Airflow)"
    )


def test_included_files_add_jobs_and_schedules(make_project: Callable[..., Path]) -> None:
    root = make_project(OTHER)
    (root / "more").mkdir()
    (root / "more" / "extra.meltano.yml").write_text(
        "jobs:\n  - name: extra\n    tasks: [x]\n"
        "schedules:\n  - name: extra-daily\n    interval: '@daily'\n    job: extra\n"
    )
    plan = plan_dags(read_project(root))
    assert "extra-daily" in [d.dag_id for d in plan.dags]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("job: ingest-b\n    start_date", "job: nope\n    start_date"), "not defined"),
        (("depends_on: [ingest-a, ingest-b]", "depends_on: [ingest-a, ghost]"), "not a job"),
        # The only schedule of ingest-b at report's interval is disabled: no DAG to wait for.
        (('  - name: b-6h\n    interval: "0 */6  * * *"', '  - name: b-6h\n    interval: "@daily"'), "no enabled"),
        (("retries: 0", "retires: 0"), "unknown"),
        (
            (
                "  - name: ingest-a\n    tasks",
                "  - name: ingest-a\n    annotations:\n      airflow:\n        depends_on: [report]\n    tasks",
            ),
            "cycle",
        ),
    ],
)
def test_inconsistent_projects_are_refused_clearly(
    make_project: Callable[..., Path], change: tuple[str, str], message: str
) -> None:
    assert change[0] in OTHER
    root = make_project(OTHER.replace(*change))
    with pytest.raises(ProjectError, match=message):
        plan_dags(read_project(root))


def test_two_schedules_of_one_upstream_at_the_same_interval_are_ambiguous(make_project: Callable[..., Path]) -> None:
    text = OTHER + "  - name: a-again\n    interval: '0 */6 * * *'\n    job: ingest-a\n"
    with pytest.raises(ProjectError, match="several schedules"):
        plan_dags(read_project(make_project(text)))


def test_retries_override_for_tests(make_project: Callable[..., Path]) -> None:
    plan = plan_dags(read_project(make_project(OTHER)), retries=0)
    assert {d.retries for d in plan.dags} == {0}


def test_every_job_is_bounded_and_runs_one_day_at_a_time_by_default(make_project: Callable[..., Path]) -> None:
    plan = plan_dags(read_project(make_project(OTHER)), timeout=dt.timedelta(minutes=7))
    assert {(d.execution_timeout, d.max_active_days) for d in plan.dags} == {(dt.timedelta(minutes=7), 1)}
    assert plan_dags(read_project(make_project(OTHER, "default"))).dags[0].execution_timeout == DEFAULT_JOB_TIMEOUT


def test_more_days_at_once_only_where_a_job_says_so(make_project: Callable[..., Path]) -> None:
    full_table_only = "  - name: ingest-a\n    annotations: {airflow: {max_active_days: 3}}\n"
    text = OTHER.replace("  - name: ingest-a\n", full_table_only)
    dags = {d.dag_id: d for d in plan_dags(read_project(make_project(text))).dags}
    assert (dags["a-every-6h"].max_active_days, dags["b-6h"].max_active_days) == (3, 1)
    with pytest.raises(ProjectError, match="max_active_days must be a whole number of at least 1"):
        plan_dags(read_project(make_project(text.replace("max_active_days: 3", "max_active_days: 0"), "zero")))


def test_the_job_timeout_setting_is_minutes_above_zero() -> None:
    assert job_timeout({}) == job_timeout({JOB_TIMEOUT_ENV: " "}) == DEFAULT_JOB_TIMEOUT == dt.timedelta(hours=1)
    assert job_timeout({JOB_TIMEOUT_ENV: "0.5"}) == dt.timedelta(seconds=30)
    for bad in ("0", "-3", "ten", "nan"):
        with pytest.raises(ProjectError, match=f"^{JOB_TIMEOUT_ENV}='{bad}' is not a number of minutes above 0"):
            job_timeout({JOB_TIMEOUT_ENV: bad})


def test_a_jobs_tasks_go_to_the_celery_queue_its_setting_names(make_project: Callable[..., Path]) -> None:
    project = read_project(make_project(OTHER))
    queues = job_queues({JOB_QUEUES_ENV: " ingest-a=step1, ingest-b=step1  report=step.2 "}, project.jobs)
    assert queues == {"ingest-a": "step1", "ingest-b": "step1", "report": "step.2"}
    dags = {d.dag_id: d for d in plan_dags(project, queues={"report": "step2"}).dags}
    assert {k: d.queue for k, d in dags.items() if d.queue} == {"report-6h": "step2"}
    assert job_queues({}, project.jobs) == job_queues({JOB_QUEUES_ENV: " "}, project.jobs) == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ingest-a", "'ingest-a' is not job=queue"),
        ("ingest-a=", "'ingest-a=' is not job=queue"),
        ("ingest-a=a/b", "'ingest-a=a/b' is not job=queue"),
        ("nope=q", "'nope' is not a job of this project \\(ingest-a, ingest-b, report\\)"),
        ("ingest-a=q ingest-a=r", "job ingest-a is given a queue twice"),
    ],
)
def test_a_bad_queue_setting_is_refused_in_one_line(
    make_project: Callable[..., Path], value: str, message: str
) -> None:
    with pytest.raises(ProjectError, match=f"^{JOB_QUEUES_ENV}: {message}"):
        job_queues({JOB_QUEUES_ENV: value}, read_project(make_project(OTHER)).jobs)


def test_a_forced_old_day_reaches_the_pipeline_by_its_setting() -> None:
    assert FORCE_OLD_DAY_ENV == pipeline_dates.FORCE_OLD_DAY_ENV


def test_make_run_applies_the_same_default_bound() -> None:
    minutes = int(DEFAULT_JOB_TIMEOUT.total_seconds() // 60)
    assert f"timeout_minutes=${{timeout_minutes:-{minutes}}}" in (PROJECT_ROOT / "scripts" / "run_day.sh").read_text()


def test_a_sensor_waits_as_long_as_its_slowest_upstream_can_take_with_its_retries(
    make_project: Callable[..., Path],
) -> None:
    # Each attempt up to the timeout; Airflow's backoff waits up to 2x delay * 2**(try - 1), at most an hour.
    assert worst_case(2, dt.timedelta(minutes=5), dt.timedelta(minutes=60)) == dt.timedelta(minutes=3 * 60 + 10 + 20)
    assert worst_case(0, dt.timedelta(minutes=5), dt.timedelta(minutes=60)) == dt.timedelta(minutes=60)
    assert worst_case(3, dt.timedelta(minutes=20), dt.timedelta(0)) == dt.timedelta(minutes=40 + 60 + 60)
    dags = {d.dag_id: d for d in plan_dags(read_project(make_project(OTHER)), timeout=dt.timedelta(minutes=10)).dags}
    # ingest-a and ingest-b: retries 2, delay 5 minutes, each.
    assert dags["report-6h"].sensor_timeout == dt.timedelta(minutes=3 * 10 + 10 + 20)
    assert dags["report-6h"].upstream_jobs == {"a-every-6h": "ingest-a", "b-6h": "ingest-b"}
    owner = "        owner: analytics\n"
    fixed = OTHER.replace(owner, owner + "        sensor_timeout_minutes: 15\n")
    dags = {d.dag_id: d for d in plan_dags(read_project(make_project(fixed, "fixed"))).dags}
    assert dags["report-6h"].sensor_timeout == dt.timedelta(minutes=15)


def test_empty_project_has_no_dags(make_project: Callable[..., Path]) -> None:
    assert plan_dags(read_project(make_project("version: 1\n"))).dags == []


def test_this_project_step_2_waits_for_the_step_1_jobs() -> None:
    """The sensors wait for the jobs that tap-lfs gates on and the publish reconciles with (pipeline.jobs)."""
    project = read_project(PROJECT_ROOT)
    plan = plan_dags(project)
    dags = {d.dag_id: d for d in plan.dags}
    assert set(dags) == {s.name for s in project.schedules}
    for dag in plan.dags:
        upstream_jobs = {dags[u].job for u in dag.upstream_dag_ids}
        if dag.job == STEP2_JOB:
            assert upstream_jobs == set(STEP1_JOBS)
        else:
            assert upstream_jobs == set()
