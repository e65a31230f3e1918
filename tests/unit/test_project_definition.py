"""meltano.yml and the plugin files agree with each other where names must match.

A step-1 job's loader writes under ``.staging/{job}`` and its publish step reads
there: the job name is written in both places, so this test keeps them in step.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.runs.locks import STEP2_JOB

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def load_project() -> tuple[dict, dict[str, dict]]:
    """The project file and every plugin by name, from the files include_paths names."""
    project = yaml.safe_load((PROJECT_ROOT / "meltano.yml").read_text())
    plugins: dict[str, dict] = {}
    for pattern in project["include_paths"]:
        for path in sorted(PROJECT_ROOT.glob(pattern.removeprefix("./"))):
            for kind in yaml.safe_load(path.read_text()).get("plugins", {}).values():
                plugins.update({plugin["name"]: plugin for plugin in kind})
    return project, plugins


PROJECT, PLUGINS = load_project()
JOBS = {job["name"]: job["tasks"][0].split() for job in PROJECT["jobs"]}


def test_every_task_names_a_defined_plugin_or_command() -> None:
    for tasks in JOBS.values():
        for task in tasks:
            plugin, _, command = task.partition(":")
            assert plugin in PLUGINS, task
            if command:
                assert command in PLUGINS[plugin]["commands"], task


@pytest.mark.parametrize("job", ["postgres-to-lfs", "csv-to-lfs"])
def test_step1_loader_and_publish_step_name_their_job(job: str) -> None:
    _, _, loader, publish = JOBS[job]
    assert PLUGINS[loader]["config"]["job"] == job
    plugin, command = publish.split(":")
    assert PLUGINS[plugin]["commands"][command]["args"] == f"publish-lfs --job {job}"


def test_step2_waits_for_exactly_the_step1_jobs() -> None:
    step1 = {name for name, tasks in JOBS.items() if PLUGINS[tasks[2]].get("inherit_from") == "target-lfs"}
    assert set(PLUGINS["tap-lfs"]["config"]["jobs"]) == step1 == {"postgres-to-lfs", "csv-to-lfs"}


def test_step2_publish_reconciles_with_the_jobs_that_tap_lfs_reads() -> None:
    args = PLUGINS["pipeline"]["commands"]["publish-analytics"]["args"].split()
    assert args[:3] == ["publish-analytics", "--export", "--jobs"]
    assert args[3:] == PLUGINS["tap-lfs"]["config"]["jobs"]


def test_step2_ends_with_the_publish_that_also_exports() -> None:
    *_, last = JOBS[STEP2_JOB]
    assert last == "pipeline:publish-analytics"


@pytest.mark.parametrize("job", ["postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics"])
def test_every_job_starts_by_claiming_its_run_lock_for_its_own_pair(job: str) -> None:
    claim, tap, target, *_ = JOBS[job]
    plugin, command = claim.split(":")
    assert PLUGINS[plugin]["commands"][command]["args"] == f"claim --job {job} --pair {tap}-to-{target}"


def test_the_analytics_writers_lock_the_job_that_runs_them() -> None:
    assert [name for name, tasks in JOBS.items() if tasks[2] == "target-analytics"] == [STEP2_JOB]


def test_every_job_has_a_daily_schedule() -> None:
    assert {s["job"]: s["interval"] for s in PROJECT["schedules"]} == {job: "@daily" for job in JOBS}
