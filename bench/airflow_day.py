"""A Northwind day through Airflow, trigger to result, when Airflow's venv is installed.

Airflow is started the product's way, ``scripts/airflow.sh`` (what ``make airflow``
runs), with its own AIRFLOW_HOME (SQLite metadata) under the bench's work folder,
free ports for the api-server and the scheduler's log server, the bench's databases
and data dir (set in the environment, so the tasks keep them over ``.env``) and the
login from ``.env``. The day's DAGs are triggered through the REST API with the
day's logical date; the figure is from the first trigger to the end of step 2's DAG
run as Airflow recorded it, checked to have succeeded with the result files in place.
With it comes the day's timeline: every task instance's queued, started and ended
times, and the sensors' pokes as seen by polling step 2's run. The DAGs are created unpaused, so
Airflow first runs today's scheduled day: the trigger waits until no run is
unfinished or due, so the figure is the triggered day's alone. Everything the script started is stopped
afterwards, even on failure: SIGTERM to the script (it stops its process groups,
the api-server last), then SIGKILL to whatever of its session is left after a grace
period.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.memory import PROJECT_ROOT, session_members, tree
from pipeline.jobs import DAY_JOBS, STEP1_JOBS, STEP2_JOB
from pipeline.warehouse.result_view import RESULT_VIEW
from pipeline.warehouse.results import result_files

AIRFLOW_SH = PROJECT_ROOT / "scripts" / "airflow.sh"  # `make airflow`; it changes to the project root itself
AIRFLOW = PROJECT_ROOT / ".meltano" / "utilities" / "airflow" / "venv" / "bin" / "airflow"
# One DAG per schedule, named by it (orchestrate/dag_generator).
STEP1_DAGS = tuple(DAY_JOBS.schedules[job] for job in STEP1_JOBS)
STEP2_DAG = DAY_JOBS.schedules[STEP2_JOB]
START_TIMEOUT, DAY_TIMEOUT, STOP_GRACE = 300.0, 900.0, 120.0
POLL_SECONDS = 0.5


def installed() -> bool:
    """Whether Airflow's venv is there (``make setup`` installs it)."""
    return AIRFLOW.exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Api:
    """The few REST calls the bench makes, with a token from the documented login."""

    def __init__(self, url: str) -> None:
        self.url, self.token = url, ""

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.url + path, data=None if body is None else json.dumps(body).encode(), method=method
        )
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read() or b"null")

    def login(self, user: str, password: str) -> None:
        self.token = self.call("POST", "/auth/token", {"username": user, "password": password})["access_token"]


def _wait(condition: Any, what: str, timeout: float, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(interval)


def _idle(api: _Api, dag_id: str) -> bool:
    """No run of the DAG is unfinished or due: the DAGs are created unpaused, so today's run starts at once."""
    due = api.call("GET", f"/api/v2/dags/{dag_id}")["next_dagrun_run_after"]
    if due and dt.datetime.fromisoformat(due) <= dt.datetime.now(dt.UTC):
        return False
    runs = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]
    return all(run["state"] in ("success", "failed") for run in runs)


def _stop(script: subprocess.Popen[bytes]) -> None:
    """SIGTERM the script (it stops its groups); SIGKILL what is left of its session after the grace period."""
    started = set(session_members(script.pid)) | set(tree(script.pid))
    with contextlib.suppress(ProcessLookupError):
        script.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        script.wait(timeout=STOP_GRACE)
    for pid in started | set(session_members(script.pid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    script.wait(timeout=30)


def _run_path(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}"


class _Watch:
    """Step 2's task instances' states as seen by polling, with the second each was first seen.

    Airflow keeps one start and end per try; a reschedule-mode sensor's pokes show
    only as its state going ``up_for_reschedule`` and back to ``queued``/``running``,
    so they are taken from these observations: one REST call a poll, every
    POLL_SECONDS, so that the watching costs the api-server little of the cores the
    day runs on.
    """

    def __init__(self, api: _Api, dag_id: str, run_id: str, start: float) -> None:
        self.api, self.dag_id, self.run_id, self.start = api, dag_id, run_id, start
        self.last: dict[str, str] = {}
        self.changes: list[dict[str, Any]] = []

    def poll(self) -> None:
        """Note each state change since the last poll."""
        at = round(time.perf_counter() - self.start, 2)
        for ti in self.api.call("GET", _run_path(self.dag_id, self.run_id) + "/taskInstances")["task_instances"]:
            state = ti["state"] or "none"
            if self.last.get(ti["task_id"]) != state:
                self.last[ti["task_id"]] = state
                self.changes.append({"dag": self.dag_id, "task": ti["task_id"], "state": state, "at": at})


def _seconds_after(stamp: str | None, origin: dt.datetime) -> float | None:
    return None if stamp is None else round((dt.datetime.fromisoformat(stamp) - origin).total_seconds(), 2)


def timeline(api: _Api, runs: dict[str, str], origin: dt.datetime) -> list[dict[str, Any]]:
    """Every task instance of the day's runs: queued, started and ended, in seconds after the trigger."""
    rows = []
    for dag_id, run_id in runs.items():
        for ti in api.call("GET", _run_path(dag_id, run_id) + "/taskInstances")["task_instances"]:
            rows.append(
                {
                    "dag": dag_id,
                    "task": ti["task_id"],
                    "state": ti["state"],
                    "try": ti["try_number"],
                    **{
                        name: _seconds_after(ti[field], origin)
                        for name, field in (("queued", "queued_when"), ("started", "start_date"), ("ended", "end_date"))
                    },
                }
            )
    return sorted(rows, key=lambda row: (row["queued"] is None, row["queued"] or 0.0))


def airflow_day(env: dict[str, str], day: dt.date, data_dir: Path, work: Path) -> dict[str, Any]:
    """The day through Airflow: ``{"seconds", "timeline", "states"}`` from the trigger to step 2's result files."""
    home = work / "airflow"
    port = _free_port()
    airflow_env = {key: value for key, value in env.items() if not key.startswith("AIRFLOW__")}
    airflow_env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_API_PORT": str(port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        }
    )
    log = work / "logs" / "airflow.log"
    api = _Api(f"http://127.0.0.1:{port}")
    with log.open("wb") as out:
        # A session of its own: everything it starts can be found and stopped (see _stop).
        script = subprocess.Popen([str(AIRFLOW_SH)], env=airflow_env, stdout=out, stderr=out, start_new_session=True)
    try:
        _wait(lambda: script.poll() is not None or b"airflow: UI on" in log.read_bytes(), "Airflow", START_TIMEOUT)
        if script.poll() is not None:
            sys.exit(f"bench: scripts/airflow.sh exited early; its output is in {log}")
        api.login(env["AIRFLOW_ADMIN_USER"], env["AIRFLOW_ADMIN_PASSWORD"])
        wanted = {*STEP1_DAGS, STEP2_DAG}
        _wait(lambda: wanted <= {d["dag_id"] for d in api.call("GET", "/api/v2/dags")["dags"]}, "the DAGs", 300)
        _wait(lambda: all(_idle(api, dag) for dag in wanted), "the scheduled runs of today", DAY_TIMEOUT)
        logical = f"{day.isoformat()}T00:00:00+00:00"
        origin, start = dt.datetime.now(dt.UTC), time.perf_counter()
        runs = {
            dag: api.call("POST", f"/api/v2/dags/{dag}/dagRuns", {"logical_date": logical})["dag_run_id"]
            for dag in sorted(wanted)
        }
        watch = _Watch(api, STEP2_DAG, runs[STEP2_DAG], start)
        step2 = _run_path(STEP2_DAG, runs[STEP2_DAG])

        def step2_finished() -> bool:
            watch.poll()
            return api.call("GET", step2)["state"] in ("success", "failed")

        _wait(step2_finished, "step 2's run", DAY_TIMEOUT, POLL_SECONDS)
        result = result_files(data_dir, day, [f"{RESULT_VIEW}.json"])
        finished = api.call("GET", step2)
        if finished["state"] != "success" or result is None or not result[f"{RESULT_VIEW}.json"].is_file():
            sys.exit(f"bench: the day through Airflow failed; see {home / 'logs'} and {log}")
        # The run's end as Airflow recorded it, not when the poll saw it: the figure does not depend on POLL_SECONDS.
        seconds = _seconds_after(finished["end_date"], origin)
        return {"seconds": seconds, "timeline": timeline(api, runs, origin), "states": watch.changes}
    except (OSError, urllib.error.URLError, TimeoutError) as exc:
        sys.exit(f"bench: the day through Airflow: {exc}; see {log}")
    finally:
        _stop(script)
