"""Read a Meltano project's jobs, schedules and plugins straight from its YAML files.

The one reader of ``meltano.yml`` outside Meltano: the DAG generator
(``orchestrate/dag_generator``) plans its DAGs from it, and ``pipeline.jobs`` finds
the jobs of a day in it. Here, not in the DAG generator, because the plugins and the
``pipeline`` utility import it too, and their virtualenvs have ``pipeline`` (and
PyYAML) but not the DAG generator; Airflow's virtualenv has both.

Why PyYAML and not ``meltano schedule list --format=json``: the DAG file is parsed
by Airflow every 30 s or so, and shelling out to Meltano costs about 2 s per parse
(measured) and needs Meltano in Airflow's virtualenv. A JSON file written at set-up
would be cheap to read but goes stale the moment someone edits a schedule. The
files themselves are always current and parse in milliseconds. What Meltano adds
on top (plugin resolution, environments) does not concern schedules and jobs,
which are plain top-level lists in ``meltano.yml`` and its ``include_paths``; of the
plugins, only their kind and literal ``config`` (with that of the plugin they inherit
from) are read.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import PipelineError

MELTANO_YML = "meltano.yml"
# The key of a job's or schedule's ``annotations`` that this project's tools read (Meltano ignores it).
ANNOTATION_KEY = "airflow"


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


class ProjectError(PipelineError):
    """The project's YAML cannot be read as this project's jobs or DAGs; the message says which entry."""


@dataclasses.dataclass(frozen=True)
class Job:
    """A Meltano job: a name, its tasks, and its ``annotations`` (tool-specific extras)."""

    name: str
    tasks: Any
    annotations: dict[str, Any]

    def blocks(self) -> list[str]:
        """The job's blocks in the order ``meltano run`` runs them: plugin names, or ``plugin:command``.

        A task is one string of space-separated blocks, or a list of them; ``tasks`` is
        one task or a list of tasks, as Meltano accepts.
        """
        tasks = self.tasks if isinstance(self.tasks, list) else [self.tasks]
        blocks: list[str] = []
        for task in tasks:
            for part in task if isinstance(task, list) else [task]:
                if not isinstance(part, str):
                    raise ProjectError(f"job {self.name}: {part!r} is not a task (plugin names separated by spaces)")
                blocks.extend(part.split())
        return blocks


def depends_on(job: Job) -> tuple[str, ...]:
    """Return the jobs whose output for the same day ``job`` reads (``annotations.airflow.depends_on``)."""
    value = (job.annotations.get(ANNOTATION_KEY) or {}).get("depends_on") or []
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ProjectError(f"job {job.name}: annotations.{ANNOTATION_KEY}.depends_on must be a list of job names")
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A Meltano schedule as written: ``job`` is None for a legacy extractor/loader one."""

    name: str
    interval: str | None
    job: str | None
    start_date: str | None
    annotations: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Plugin:
    """A plugin as defined: its kind (``extractors``, ``loaders``, ...) and its ``config``, over its parent's."""

    name: str
    kind: str
    config: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Project:
    """The parts of a Meltano project that orchestration and the day's steps need."""

    root: Path
    jobs: dict[str, Job]
    schedules: list[Schedule]
    plugins: dict[str, Plugin]


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


def _plugin_configs(defined: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Plugin]:
    """Each plugin of ``defined`` (name: its kind and entry) with its parent's config under its own."""

    def config(name: str, seen: tuple[str, ...]) -> dict[str, Any]:
        if name in seen:
            raise ProjectError(f"plugin {name} inherits from itself: {' -> '.join([*seen, name])}")
        _, entry = defined[name]
        parent = entry.get("inherit_from")
        inherited = config(parent, (*seen, name)) if parent in defined else {}
        return {**inherited, **(entry.get("config") or {})}

    return {name: Plugin(name=name, kind=kind, config=config(name, ())) for name, (kind, _) in defined.items()}


def read_project(root: Path) -> Project:
    """Jobs, schedules and plugins of the project at ``root``, merged over all its files.

    A name defined twice is an error, as it is for Meltano.
    """
    jobs: dict[str, Job] = {}
    schedules: list[Schedule] = []
    plugins: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in project_files(root):
        content = _load_yaml(path)
        for kind, entries in (content.get("plugins") or {}).items():
            for entry in entries or []:
                name = entry.get("name")
                if not name:
                    raise ProjectError(f"{path}: a plugin of {kind} has no name")
                if name in plugins:
                    raise ProjectError(f"{path}: plugin {name!r} is defined twice")
                plugins[name] = (kind, entry)
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
    return Project(root=root, jobs=jobs, schedules=schedules, plugins=_plugin_configs(plugins))
