"""The text the generator writes for people: shell commands, log lines, DAG docs.

Kept apart from ``plan``, which holds the rules (which schedule becomes a DAG,
what it waits for), so that wording can change without touching a rule and the
rules read without paragraphs of Markdown in between.
"""

from __future__ import annotations

import shlex

from pipeline.project import Job, Schedule


def rerun_command(job: str, day: str) -> str:
    """Return the command, from the project root, that reruns ``job`` for ``day``.

    The same text as ``pipeline.core.commands.rerun_command`` (a test checks it), written
    again here because the generator must work for projects without that package.
    """
    return f"PIPELINE_DATE={day} .venv/bin/meltano run {shlex.quote(job)}"


def failure_line(job: str, day: str) -> str:
    """Return the one line a failed task's log ends with."""
    return f"FAILED: job {job} for {day}. Rerun: {rerun_command(job, day)}  (or clear the task in Airflow)"


def dag_doc(spec_job: Job, schedule: Schedule, upstream: tuple[str, ...], writes: str | None) -> str:
    """Write the DAG's doc: what the job does and writes, what it waits for, how to rerun a day."""
    tasks = spec_job.tasks if isinstance(spec_job.tasks, list) else [spec_job.tasks]
    lines = [
        f"### Meltano job `{spec_job.name}` (schedule `{schedule.name}`, `{schedule.interval}`)",
        "",
        "Runs, from the project root, with the run's logical date as the day:",
        "",
        f"    {rerun_command(spec_job.name, 'YYYY-MM-DD')}",
        "",
        "Tasks: " + "; ".join(f"`{t if isinstance(t, str) else ' '.join(t)}`" for t in tasks),
        "",
        f"Writes: {writes or 'see the job in meltano.yml.'}",
        "",
    ]
    if upstream:
        lines += [
            "Waits for these DAGs' runs of the same logical date (fails at once if one failed): "
            + ", ".join(f"`{u}`" for u in upstream),
            "",
        ]
    lines += [
        "A run's day is the UTC date of its logical date, whatever its time of day.",
        "",
        "**Rerun a day**: clear this DAG's run of that day in the UI (Grid view, the run, *Clear*), or",
        f"`meltano invoke airflow tasks clear {schedule.name} -s DAYT00:00:00 -e DAYT23:59:59 -y`, or outside Airflow:",
        f"`{rerun_command(spec_job.name, 'DAY')}`. A trigger needs a logical date (the UI's Trigger",
        "dialog fills one in).",
    ]
    if upstream:
        lines += [
            "",
            "**The whole day in one action**: *Trigger* this DAG with `rerun_step1` on; it starts (or clears)",
            "the runs above for that day and waits for them.",
        ]
    return "\n".join(lines)
