"""What a finished job run means for Airflow, and what step 2's sensors decide: pure functions, no Airflow import.

``meltano run`` exits 1 for every failure, so the class of a failure reaches the
task through the file named by ``PIPELINE_FAILURE_FILE``: every project component
appends ``{"component", "transient", "message"}`` to it when it fails
(``pipeline.core.errors.report_failure``). The task reads it after the job:

- a permanent record (bad input, a refused gate, a type conflict): fail at once, no retry;
- only transient records (a database that is down, a lock held by another run): retry with backoff;
- no record at all (the job crashed before a component could say why: killed, out of
  memory, a plugin's own traceback): counted as transient, so it is retried; if it is
  deterministic, the retries end with the same line and the task fails.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A failed job run as the task reports it: retry or not, and the one line that says why."""

    transient: bool
    cause: str


def day_of(logical_date: dt.datetime | None) -> dt.date | None:
    """The day a run processes: the UTC date of its logical date, whatever its time of day."""
    if logical_date is None:
        return None
    if logical_date.tzinfo is None:
        raise ValueError(f"logical date {logical_date} has no time zone")
    return logical_date.astimezone(dt.UTC).date()


def day_end(day: dt.date) -> dt.datetime:
    """The first instant after ``day`` (UTC midnight of the next day)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def read_failures(path: Path) -> list[dict[str, object]]:
    """The records in a failure file; a line that is not a JSON object counts as a permanent record."""
    if not path.is_file():
        return []
    records: list[dict[str, object]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = {"component": "?", "transient": False, "message": line.strip()}
        if not isinstance(record, dict):
            record = {"component": "?", "transient": False, "message": str(record)}
        records.append(record)
    return records


def classify(job: str, exit_code: int, records: list[dict[str, object]]) -> Outcome:
    """Decide what a failed ``meltano run`` (exit code not 0) means, from its failure records.

    The first permanent record wins: a retry would meet it again. The cause names the
    component and carries its own one-line message.
    """
    permanent = [r for r in records if not r.get("transient")]
    chosen = permanent[0] if permanent else (records[0] if records else None)
    if chosen is None:
        return Outcome(
            transient=True,
            cause=(
                f"job {job} exited with code {exit_code} without recording a cause (a crash?): "
                "retried as transient; the lines above are its output"
            ),
        )
    return Outcome(transient=not permanent, cause=f"{chosen.get('component', '?')}: {chosen.get('message', '')}")


class Decision(enum.Enum):
    """What a same-day sensor does after one look at its upstream job's day."""

    ACCEPT = "accept"
    WAIT = "wait"
    FAIL = "fail"


@dataclasses.dataclass(frozen=True)
class UpstreamRun:
    """The upstream DAG's latest run of the day; ``started_at`` None: queued (or cleared), not started yet."""

    run_id: str
    state: str
    started_at: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A sensor's decision and the one line that says why."""

    decision: Decision
    reason: str


def upstream_verdict(receipt_at: dt.datetime | None, run: UpstreamRun | None) -> Verdict:
    """Decide from the newer of the day's step-1 receipt (written when) and the day's latest Airflow run.

    A run started after the receipt was written (or not started yet) is the newer: its
    state decides (success accepts, failure fails at once, anything else waits). Else
    the receipt is the newer: the day was published after every Airflow run of it began,
    by that run (publishing is a step-1 job's last task) or outside Airflow (``make
    run``), and is accepted at once. Nothing at all: wait.
    """
    if run is not None and (receipt_at is None or run.started_at is None or run.started_at > receipt_at):
        if run.state == "success":
            return Verdict(Decision.ACCEPT, f"run {run.run_id} succeeded")
        if run.state == "failed":
            return Verdict(Decision.FAIL, f"its newest run {run.run_id} failed")
        return Verdict(Decision.WAIT, f"its newest run {run.run_id} is {run.state}")
    if receipt_at is not None:
        return Verdict(Decision.ACCEPT, f"its receipt of {receipt_at:%Y-%m-%dT%H:%M:%SZ} is newer than any run of it")
    return Verdict(Decision.WAIT, "no run and no receipt of it yet")
