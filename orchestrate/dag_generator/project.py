"""Read a Meltano project's jobs and schedules straight from its YAML files.

Why PyYAML and not ``meltano schedule list --format=json``: the DAG file is parsed
by Airflow every 30 s or so, and shelling out to Meltano costs about 2 s per parse
(measured) and needs Meltano in Airflow's virtualenv. A JSON file written at set-up
would be cheap to read but goes stale the moment someone edits a schedule. The
files themselves are always current and parse in milliseconds. What Meltano adds
on top (plugin resolution, environments) does not concern schedules and jobs,
which are plain top-level lists in ``meltano.yml`` and its ``include_paths``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

MELTANO_YML = "meltano.yml"


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans, as Meltano's ruamel.yaml reads them.

    PyYAML follows YAML 1.1, where ``off``, ``no``, ``on`` and ``yes`` are booleans:
    a schedule named ``off`` would lose its name. Only ``true``/``false`` are booleans here.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class ProjectError(Exception):
    """The project's YAML cannot be turned into DAGs; the message says which entry."""


@dataclasses.dataclass(frozen=True)
class Job:
    """A Meltano job: a name, its tasks, and its ``annotations`` (tool-specific extras)."""

    name: str
    tasks: Any
    annotations: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A Meltano schedule as written: ``job`` is None for a legacy extractor/loader one."""

    name: str
    interval: str | None
    job: str | None
    start_date: str | None
    annotations: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Project:
    """The parts of a Meltano project that orchestration needs."""

    root: Path
    jobs: dict[str, Job]
    schedules: list[Schedule]


def _load_yaml(path: Path) -> dict[str, Any]:
    """One YAML file as a mapping; an empty file is an empty mapping."""
    try:
        content = yaml.load(path.read_text(encoding="utf-8"), Loader=_Yaml12Loader)
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path} is not valid YAML: {exc}") from exc
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ProjectError(f"{path} is not a YAML mapping")
    return content


def project_files(root: Path) -> list[Path]:
    """``meltano.yml`` followed by the files its ``include_paths`` globs name, sorted as Meltano does."""
    main = root / MELTANO_YML
    if not main.is_file():
        raise ProjectError(f"{main} does not exist: not a Meltano project root")
    files = [main]
    for pattern in _load_yaml(main).get("include_paths") or []:
        files.extend(sorted(p for p in root.glob(pattern) if p.is_file()))
    return files


def _annotations(entry: dict[str, Any], where: str) -> dict[str, Any]:
    annotations = entry.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ProjectError(f"{where}: annotations must be a mapping")
    return annotations


def read_project(root: Path) -> Project:
    """Jobs and schedules of the project at ``root``, merged over all its files.

    A name defined twice is an error, as it is for Meltano.
    """
    jobs: dict[str, Job] = {}
    schedules: list[Schedule] = []
    for path in project_files(root):
        content = _load_yaml(path)
        for entry in content.get("jobs") or []:
            name = entry.get("name")
            if not name:
                raise ProjectError(f"{path}: a job has no name")
            if name in jobs:
                raise ProjectError(f"{path}: job {name!r} is defined twice")
            jobs[name] = Job(name=name, tasks=entry.get("tasks"), annotations=_annotations(entry, f"job {name}"))
        for entry in content.get("schedules") or []:
            name = entry.get("name")
            if not name:
                raise ProjectError(f"{path}: a schedule has no name")
            if any(s.name == name for s in schedules):
                raise ProjectError(f"{path}: schedule {name!r} is defined twice")
            interval = entry.get("interval")
            schedules.append(
                Schedule(
                    name=name,
                    interval=str(interval) if interval is not None else None,
                    job=entry.get("job"),
                    start_date=str(entry["start_date"]) if entry.get("start_date") else None,
                    annotations=_annotations(entry, f"schedule {name}"),
                )
            )
    return Project(root=root, jobs=jobs, schedules=schedules)
