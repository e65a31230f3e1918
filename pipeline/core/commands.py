"""The exact commands a failure message tells the user to run."""

from __future__ import annotations

import datetime as dt
import shlex


def rerun_command(job: str, day: dt.date) -> str:
    """The exact command that (re)runs ``job`` for ``day`` from the project root."""
    return f"PIPELINE_DATE={day.isoformat()} .venv/bin/meltano run {job}"


def migrate_command(day: dt.date, schema: str, table: str) -> str:
    """The exact command that migrates analytics table ``schema.table`` to the types of ``day``'s load."""
    return (
        f".venv/bin/meltano invoke pipeline migrate --date {day.isoformat()} "
        f"--schema {shlex.quote(schema)} --table {shlex.quote(table)}"
    )
