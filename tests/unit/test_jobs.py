"""pipeline.jobs: the day's jobs, their roles and day folders, read from meltano.yml alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.jobs import DAY_FOLDER_PARENTS, DAY_JOBS, STEP1_JOBS, STEP2_JOB, day_jobs, project_root
from pipeline.project import ProjectError, read_project
from tests.conftest import PROJECT_ROOT

# A project with a third source added in its YAML only: its job, its plugins, its schedule.
PLUGINS = """\
plugins:
  extractors:
    - name: tap-a
    - name: tap-b
    - name: tap-new
    - name: tap-lfs
  loaders:
    - name: target-lfs
      config:
        data_dir: data
    - name: target-lfs-a
      inherit_from: target-lfs
      config:
        folder_template: a/{table}/{date}
    - name: target-lfs-b
      inherit_from: target-lfs
      config:
        folder_template: b/{date}
    - name: target-lfs-new
      inherit_from: target-lfs
      config:
        folder_template: new/{date}
    - name: target-analytics
  utilities:
    - name: pipeline
"""
MELTANO = """\
include_paths:
  - ./plugins/*.meltano.yml
jobs:
  - name: a-to-lfs
    tasks:
      - pipeline:claim-a tap-a target-lfs-a pipeline:publish-a
  - name: b-to-lfs
    tasks: [pipeline:claim-b, [tap-b, target-lfs-b], pipeline:publish-b]
  - name: new-to-lfs
    tasks: pipeline:claim-new tap-new target-lfs-new pipeline:publish-new
  - name: lfs-to-analytics
    annotations:
      airflow:
        depends_on: [a-to-lfs, b-to-lfs, new-to-lfs]
    tasks:
      - pipeline:claim-analytics tap-lfs target-analytics pipeline:publish-analytics
schedules:
"""


def make_project(root: Path, meltano: str = MELTANO, plugins: str = PLUGINS) -> Path:
    jobs = [line.split(": ")[1] for line in meltano.splitlines() if line.startswith("  - name: ")]
    schedules = "".join(f"  - name: daily-{job}\n    interval: '@daily'\n    job: {job}\n" for job in jobs)
    (root / "plugins").mkdir(exist_ok=True)
    (root / "plugins" / "all.meltano.yml").write_text(plugins)
    (root / "meltano.yml").write_text(meltano + schedules)
    return root


def test_this_project_s_day() -> None:
    assert STEP1_JOBS == ("postgres-to-lfs", "csv-to-lfs")
    assert STEP2_JOB == "lfs-to-analytics"
    assert DAY_JOBS.order == (*STEP1_JOBS, STEP2_JOB)
    assert DAY_FOLDER_PARENTS == ("postgres/*", "csv")
    assert [DAY_JOBS.pairs(job) for job in DAY_JOBS.order] == [
        ["tap-postgres-to-target-lfs-postgres"],
        ["tap-order-details-to-target-lfs-csv"],
        ["tap-lfs-to-target-analytics"],
    ]
    assert DAY_JOBS.running("tap-postgres") == "postgres-to-lfs"
    assert DAY_JOBS.schedules == {job: f"daily-{job}" for job in DAY_JOBS.order}


def test_a_source_added_in_the_yaml_alone_joins_the_day(tmp_path: Path) -> None:
    jobs = day_jobs(read_project(make_project(tmp_path)))
    assert jobs.step1 == ("a-to-lfs", "b-to-lfs", "new-to-lfs")
    assert jobs.step2 == "lfs-to-analytics"
    assert jobs.pairs("new-to-lfs") == ["tap-new-to-target-lfs-new"]
    assert jobs.pairs("b-to-lfs") == ["tap-b-to-target-lfs-b"]
    assert jobs.running("target-lfs-new") == "new-to-lfs"
    assert jobs.day_folder_parents == ("a/*", "b", "new")
    assert jobs.schedules["new-to-lfs"] == "daily-new-to-lfs"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("        depends_on: [a-to-lfs, b-to-lfs, new-to-lfs]\n", "", "one job .step 2. must list .*found none"),
        ("[a-to-lfs, b-to-lfs, new-to-lfs]", "[a-to-lfs, b-to-lfs]", "lfs-to-analytics must depend on every other"),
        ("[a-to-lfs, b-to-lfs, new-to-lfs]", "[a-to-lfs, b-to-lfs, a-to-lfs]", "must depend on every other job, once"),
        (
            "  - name: new-to-lfs\n",
            "  - name: new-to-lfs\n    annotations: {airflow: {depends_on: [a-to-lfs]}}\n",
            "found new-to-lfs, lfs-to-analytics",
        ),
        ("tap-new target-lfs-new", "tap-new", "step-1 job new-to-lfs has 0 extractor/loader pairs"),
    ],
)
def test_a_day_that_is_not_step_1_then_step_2_is_refused(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in MELTANO
    with pytest.raises(ProjectError, match=message):
        day_jobs(read_project(make_project(tmp_path, MELTANO.replace(old, new))))


def test_a_step_1_loader_must_lay_out_day_folders(tmp_path: Path) -> None:
    plugins = PLUGINS.replace("new/{date}", "new/{date}/{table}")
    with pytest.raises(ProjectError, match=r"target-lfs-new's folder_template 'new/\{date\}/\{table\}'"):
        day_jobs(read_project(make_project(tmp_path, plugins=plugins)))


def test_a_job_without_a_schedule_is_refused(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    text = (root / "meltano.yml").read_text()
    (root / "meltano.yml").write_text(text.split("  - name: daily-new-to-lfs")[0])
    with pytest.raises(ProjectError, match="job new-to-lfs has no schedule"):
        day_jobs(read_project(root))


def test_a_plugin_inherits_its_parent_s_config(tmp_path: Path) -> None:
    plugins = read_project(make_project(tmp_path)).plugins
    assert plugins["target-lfs-b"].kind == "loaders"
    assert plugins["target-lfs-b"].config == {"data_dir": "data", "folder_template": "b/{date}"}


def test_the_project_root_is_meltano_s_else_the_working_directory(tmp_path: Path) -> None:
    assert project_root({"MELTANO_PROJECT_ROOT": str(tmp_path)}) == tmp_path.resolve()
    assert project_root({}) == Path.cwd().resolve()


# What each job still names itself by, in its own loader and commands (one job, one place each).
PROJECT = read_project(PROJECT_ROOT)
UTILITIES = yaml.safe_load((PROJECT_ROOT / "orchestrate" / "utilities.meltano.yml").read_text())["plugins"]["utilities"]
COMMANDS = {f"{p['name']}:{name}": spec["args"] for p in UTILITIES for name, spec in (p.get("commands") or {}).items()}


@pytest.mark.parametrize("job", DAY_JOBS.order)
def test_every_block_is_a_defined_plugin_or_command(job: str) -> None:
    for block in PROJECT.jobs[job].blocks():
        assert block in COMMANDS if ":" in block else block in PROJECT.plugins, block


@pytest.mark.parametrize("job", DAY_JOBS.order)
def test_every_job_claims_its_own_run_lock_first(job: str) -> None:
    first, *_ = PROJECT.jobs[job].blocks()
    assert COMMANDS[first] == f"claim --job {job}"


@pytest.mark.parametrize("job", STEP1_JOBS)
def test_a_step_1_job_s_loader_and_publish_name_it(job: str) -> None:
    [(_, loader)] = DAY_JOBS.extract_loads[job]
    *_, publish = PROJECT.jobs[job].blocks()
    assert PROJECT.plugins[loader].config["job"] == job
    assert COMMANDS[publish] == f"publish-lfs --job {job}"


def test_step_2_ends_with_the_publish_that_also_exports() -> None:
    *_, last = PROJECT.jobs[STEP2_JOB].blocks()
    assert COMMANDS[last] == "publish-analytics --export"


def test_every_job_runs_daily() -> None:
    assert {s.job: s.interval for s in PROJECT.schedules} == {job: "@daily" for job in DAY_JOBS.order}
