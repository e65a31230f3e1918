"""`make airflow` (scripts/airflow.sh) for real, on a port other than 8080.

The port set by its Meltano name (AIRFLOW_API_PORT) must reach the api-server, the
tasks' execution API URL and the script's readiness wait: a task that runs to
success proves the execution API was found on that port. The task also sees which
variables came from `.env` (PIPELINE_DOTENV_KEYS), which a job task reads afresh. Its own AIRFLOW_HOME and
a one-task DAG folder keep the project's DAGs and metadata out of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import textwrap
import urllib.parse
from pathlib import Path

import pytest

from tests.orchestrate.airflow_server import ADMIN, AirflowServer, ApiError, free_port, http

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PING_DAG = textwrap.dedent(
    """\
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG

    with DAG("ping", schedule=None):
        BashOperator(task_id="ping", bash_command='echo "$PIPELINE_DOTENV_KEYS" > "$PING_OUT"')
    """
)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (airflow.sh puts each of its children in a process group of its own)."""
    table = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout.split()
    children: dict[int, list[int]] = {}
    for child, parent in zip(table[::2], table[1::2], strict=True):
        children.setdefault(int(parent), []).append(int(child))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has ended)."""
    status = Path(f"/proc/{pid}/stat")
    try:
        return status.read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_make_airflow_honours_a_changed_port_and_requires_a_login(tmp_path: Path) -> None:
    if not (PROJECT_ROOT / ".venv" / "bin" / "meltano").exists():
        pytest.fail("run `make setup` first")
    port = free_port()
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "ping.py").write_text(PING_DAG, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_API_PORT": str(port),
            "AIRFLOW_HOME": str(tmp_path / "home"),
            "AIRFLOW_CORE_DAGS_FOLDER": str(dags),
            "AIRFLOW_CORE_PARALLELISM": "2",
            # Not a plugin setting: passed through as is; the scheduler's log server (8793 by default).
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW_ADMIN_USER": ADMIN[0],
            "AIRFLOW_ADMIN_PASSWORD": ADMIN[1],
            "PING_OUT": str(tmp_path / "ping.out"),
        }
    )
    log = tmp_path / "airflow.out"
    with open(log, "wb") as out:
        script = subprocess.Popen(
            [str(PROJECT_ROOT / "scripts" / "airflow.sh")],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    started: list[int] = []
    try:
        AirflowServer.wait_for(
            lambda: f"UI on {url}" in log.read_text(errors="replace") or script.poll() is not None,
            "airflow.sh to report the UI ready",
            300,
        )
        assert script.poll() is None, log.read_text()[-3000:]
        with pytest.raises(ApiError) as anonymous:
            http("GET", f"{url}/api/v2/dags")
        assert anonymous.value.status in (401, 403)
        token = http("POST", f"{url}/auth/token", {"username": ADMIN[0], "password": ADMIN[1]})["access_token"]

        def ping_parsed() -> bool:
            return "ping" in {d["dag_id"] for d in http("GET", f"{url}/api/v2/dags", token=token)["dags"]}

        AirflowServer.wait_for(ping_parsed, "the ping DAG to be parsed", 180)
        run = http("POST", f"{url}/api/v2/dags/ping/dagRuns", {"logical_date": None}, token=token)["dag_run_id"]

        def state() -> str:
            return str(
                http("GET", f"{url}/api/v2/dags/ping/dagRuns/{urllib.parse.quote(run, safe='')}", token=token)["state"]
            )

        AirflowServer.wait_for(lambda: state() in ("success", "failed"), "the ping run", 180)
        assert state() == "success", log.read_text()[-3000:]
        # Tasks know which of their variables came from .env at start, so they read it afresh.
        assert "TAP_POSTGRES_DATABASE" in (tmp_path / "ping.out").read_text().strip().split(",")

        # Ctrl-C (SIGTERM) stops the script and everything it started.
        started = descendants(script.pid)
        script.send_signal(signal.SIGTERM)
        script.wait(timeout=180)
        assert [pid for pid in started if alive(pid)] == []
    finally:
        if script.poll() is None:
            started += descendants(script.pid)
        for pid in [script.pid, *started]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        script.wait(timeout=30)
