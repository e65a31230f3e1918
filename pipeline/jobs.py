"""The jobs that make up a day, as ``meltano.yml`` defines them: the one place they are written.

Step 2 is the one job whose ``annotations.airflow.depends_on`` names others (the
DAGs' sensors read the same list): the jobs it names, in that order, are step 1, and
must be every other job. Everything else that needs a job's name or role reads it
here: the run locks and the publish (``STEP2_JOB``), tap-lfs's gate and the step-2
publish's reconciliation (``STEP1_JOBS``), the claim's Meltano state IDs
(``DayJobs.pairs``), retention (``DAY_FOLDER_PARENTS``, from the step-1 loaders'
``folder_template``), ``scripts/run_day.sh`` and the benchmark. Adding a source is then
its plugins, its commands and its job in the YAML, with no list of jobs to extend elsewhere.

The constants are read once, when this module is first imported, from the project
at ``MELTANO_PROJECT_ROOT`` (Meltano sets it for every plugin and command it runs),
else the working directory, as ``pipeline.core.store`` resolves a relative ``DATA_DIR``.
So only the modules that need them import this one: the plugins that merely read or
write day folders (run from anywhere by their tests) do not.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pipeline.project import MELTANO_YML, Project, ProjectError, depends_on, read_project

PROJECT_ROOT_ENV = "MELTANO_PROJECT_ROOT"
# A step-1 loader's folder_template ends in the day (target-lfs's placeholders: {table}, {date}).
DAY_PART = "/{date}"


@dataclasses.dataclass(frozen=True)
class DayJobs:
    """The jobs of one day and what the project's own steps need to know of each."""

    step1: tuple[str, ...]
    step2: str
    # Each job's (extractor, loader) pairs, as `meltano run` links them.
    extract_loads: dict[str, tuple[tuple[str, str], ...]]
    # Each job's daily schedule, which names its DAG.
    schedules: dict[str, str]
    # Each step-1 job's loader's folder_template, whose parent holds the job's day folders.
    folder_templates: dict[str, str]

    @property
    def order(self) -> tuple[str, ...]:
        """Every job in the order a day runs them: step 1's (side by side), then step 2."""
        return (*self.step1, self.step2)

    def pairs(self, job: str) -> list[str]:
        """The job's ``<extractor>-to-<loader>`` names: its runs' Meltano state IDs, less environment and suffix."""
        return [f"{extractor}-to-{loader}" for extractor, loader in self.extract_loads[job]]

    def running(self, plugin: str) -> str:
        """The job that runs ``plugin`` (an extractor or a loader)."""
        jobs = [job for job, pairs in self.extract_loads.items() if any(plugin in pair for pair in pairs)]
        if len(jobs) != 1:
            raise ProjectError(f"{MELTANO_YML}: {len(jobs)} jobs run {plugin} ({', '.join(jobs)}); expected one")
        return jobs[0]

    @property
    def day_folder_parents(self) -> tuple[str, ...]:
        """The folders (globs under DATA_DIR) whose entries are step 1's day folders, e.g. ``postgres/*``, ``csv``."""
        return tuple(template.removesuffix(DAY_PART).format(table="*") for template in self.folder_templates.values())


def _extract_loads(project: Project, job: str) -> tuple[tuple[str, str], ...]:
    """The job's extractor/loader pairs: each extractor with the next loader, as ``meltano run`` links them."""
    pairs: list[tuple[str, str]] = []
    extractor = None
    for block in project.jobs[job].blocks():
        kind = project.plugins[block].kind if block in project.plugins else None
        if kind == "extractors":
            extractor = block
        elif kind == "loaders" and extractor:
            pairs.append((extractor, block))
            extractor = None
    return tuple(pairs)


def _folder_template(project: Project, job: str, pairs: tuple[tuple[str, str], ...]) -> str:
    """The ``folder_template`` of a step-1 job's loader; one per job, ending in ``/{date}``."""
    where = f"{project.root / MELTANO_YML}: step-1 job {job}"
    if len(pairs) != 1:
        raise ProjectError(f"{where} has {len(pairs)} extractor/loader pairs; a step-1 job has one")
    [(_, loader)] = pairs
    template = project.plugins[loader].config.get("folder_template")
    if not isinstance(template, str) or not template.endswith(DAY_PART):
        raise ProjectError(f"{where}: its loader {loader}'s folder_template {template!r} does not end in /{{date}}")
    return template


def day_jobs(project: Project) -> DayJobs:
    """The day's jobs of ``project``: refused unless one job depends on all the others, which depend on none."""
    where = project.root / MELTANO_YML
    dependents = [job for job in project.jobs.values() if depends_on(job)]
    if len(dependents) != 1:
        named = ", ".join(job.name for job in dependents) or "none"
        raise ProjectError(f"{where}: one job (step 2) must list annotations.airflow.depends_on; found {named}")
    step2 = dependents[0].name
    step1 = depends_on(dependents[0])
    others = [name for name in project.jobs if name != step2]
    if sorted(step1) != sorted(others):
        raise ProjectError(f"{where}: {step2} must depend on every other job, once each ({', '.join(others)})")
    schedules = {s.job: s.name for s in project.schedules if s.job}
    if missing := [job for job in project.jobs if job not in schedules]:
        raise ProjectError(f"{where}: job {missing[0]} has no schedule")
    pairs = {job: _extract_loads(project, job) for job in project.jobs}
    return DayJobs(
        step1=step1,
        step2=step2,
        extract_loads=pairs,
        schedules={job: schedules[job] for job in project.jobs},
        folder_templates={job: _folder_template(project, job, pairs[job]) for job in step1},
    )


def project_root(environ: Mapping[str, str] | None = None) -> Path:
    """The Meltano project's root: ``MELTANO_PROJECT_ROOT``, else the working directory."""
    environ = os.environ if environ is None else environ
    return Path(environ.get(PROJECT_ROOT_ENV) or ".").resolve()


DAY_JOBS = day_jobs(read_project(project_root()))
STEP1_JOBS = DAY_JOBS.step1
# The one job that writes the analytics day (its loader, publish and export take its locks).
STEP2_JOB = DAY_JOBS.step2
DAY_FOLDER_PARENTS = DAY_JOBS.day_folder_parents


def main() -> int:
    """Print the day's jobs in the order they run, one a line, step 2 last (for ``scripts/run_day.sh``)."""
    print("\n".join(DAY_JOBS.order))
    return 0


if __name__ == "__main__":
    sys.exit(main())
