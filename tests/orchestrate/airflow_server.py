"""A real Airflow (api-server, scheduler, dag-processor) for a test, and a small REST client for it.

Each server gets free ports, its own AIRFLOW_HOME and metadata DB (SQLite, or a
throwaway Postgres database from :func:`postgres_metadata_db`: Airflow refuses
backfills on SQLite while the scheduler writes to it), a login
(written by scripts/airflow_auth.py, as `make airflow` does) and its own process
group per process, so that stopping it also ends the task workers the scheduler forked.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from pipeline.core import config
from pipeline.core.connections import ADMIN as DB_ADMIN
from pipeline.core.connections import ANALYTICS
from pipeline.setup.databases import drop_database, ensure_database

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = PROJECT_ROOT / "orchestrate" / "dags"
ADMIN = ("admin", "test-" + secrets.token_hex(8))
FINISHED = frozenset({"success", "failed"})


def free_port() -> int:
    """A TCP port nobody listens on right now (bind port 0, read it back)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres_metadata_db() -> Iterator[str]:
    """A throwaway database on the analytics server for Airflow's metadata; its SQLAlchemy URL. Dropped after.

    Airflow's metadata belongs to an account of its own (in Docker, the Airflow database's
    owner), never to a job's role: here the administrator, who creates the database.
    """
    env = {
        **config.project_env(PROJECT_ROOT, with_admin=True),
        f"{ANALYTICS}_DATABASE": f"test_airflow_{uuid.uuid4().hex[:10]}",
    }
    ensure_database(ANALYTICS, env)
    user, password = (urllib.parse.quote(env.get(f"{DB_ADMIN}_{k}") or "", safe="") for k in ("USER", "PASSWORD"))
    host, port, name = (env[f"{ANALYTICS}_{k}"] for k in ("HOST", "PORT", "DATABASE"))
    try:
        yield f"postgresql+psycopg2://{user}:{password}@{host}:{port}/{name}"
    finally:
        drop_database(ANALYTICS, env)


class ApiError(Exception):
    """An HTTP error answer of the REST API, with its status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status


def http(method: str, url: str, body: Any = None, token: str | None = None) -> Any:
    """One JSON request; the decoded answer, or ApiError."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            text = answer.read().decode()
    except urllib.error.HTTPError as exc:
        raise ApiError(exc.code, exc.read().decode(errors="replace")) from exc
    return json.loads(text) if text else None


class AirflowServer:
    """Airflow's three processes for one project, and the REST calls the tests make."""

    def __init__(
        self, venv: Path, home: Path, project: Path, extra_env: dict[str, str] | None = None, db_url: str | None = None
    ) -> None:
        self.venv = venv
        self.home = home
        self.project = project
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **(extra_env or {}),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "false",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "false",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            # The scheduler's log server listens on 8793 by default: other Airflows on this machine may too.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "MELTANO_PROJECT_ROOT": str(project),
            "AIRFLOW_ADMIN_USER": ADMIN[0],
            "AIRFLOW_ADMIN_PASSWORD": ADMIN[1],
        }
        self.env.pop("VIRTUAL_ENV", None)
        self.env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
        if db_url:
            self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = db_url
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None

    def start(self, dag_ids: list[str]) -> None:
        """Migrate, write the login, start the three processes; return when the DAGs are parsed."""
        self.home.mkdir(parents=True, exist_ok=True)
        users = subprocess.run(
            [
                str(self.venv / "bin" / "python"),
                str(PROJECT_ROOT / "scripts" / "airflow_auth.py"),
                str(self.home / "simple_auth_manager_passwords.json.generated"),
            ],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = users
        migrate = subprocess.run(
            [str(self.venv / "bin" / "airflow"), "db", "migrate"], env=self.env, capture_output=True, text=True
        )
        assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
        # The api-server first (tasks report to it), stopped last.
        for name in ("api-server", "dag-processor", "scheduler"):
            log = open(self.home / f"{name}.out", "wb")  # noqa: SIM115 - closed with the process
            self.processes[name] = subprocess.Popen(
                [str(self.venv / "bin" / "airflow"), name],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            if name == "api-server":
                self.wait_for(lambda: self._healthy(), "the api-server's health endpoint", 180)
        self.wait_for(
            lambda: set(dag_ids) <= {d["dag_id"] for d in self.get("/api/v2/dags")["dags"]},
            f"the DAGs {dag_ids} to be parsed",
            180,
        )

    def _healthy(self) -> bool:
        if self.processes["api-server"].poll() is not None:
            raise RuntimeError("the api-server exited:\n" + (self.home / "api-server.out").read_text()[-3000:])
        try:
            http("GET", f"{self.url}/api/v2/monitor/health")
        except (OSError, ApiError):
            return False
        return True

    def stop(self) -> None:
        """SIGTERM the scheduler, dag-processor, then api-server groups; SIGKILL what is left."""
        for name in ("scheduler", "dag-processor", "api-server"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        for process in self.processes.values():
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    @staticmethod
    def wait_for(condition: Any, what: str, timeout: float) -> None:
        """Poll ``condition`` once a second; fail naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(1)
        raise AssertionError(f"gave up waiting for {what} after {timeout} s")

    # The REST API, logged in as the documented admin.

    def token(self) -> str:
        """A token from the documented login, ``POST /auth/token``."""
        if self._token is None:
            answer = http("POST", f"{self.url}/auth/token", {"username": ADMIN[0], "password": ADMIN[1]})
            self._token = answer["access_token"]
        return self._token

    def get(self, path: str) -> Any:
        """GET an API path with the admin's token."""
        return http("GET", self.url + path, token=self.token())

    def post(self, path: str, body: Any) -> Any:
        """POST to an API path with the admin's token."""
        return http("POST", self.url + path, body, token=self.token())

    def trigger(self, dag_id: str, logical_date: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run with that logical date (any time of day); its run id."""
        body = {"logical_date": logical_date, "conf": conf or {}}
        return str(self.post(f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of a DAG."""
        return list(self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One run."""
        return dict(self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"))

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's task instances by task id."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return {t["task_id"]: t for t in self.get(path)["task_instances"]}

    def wait_finished(self, dag_id: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
        """The run once it succeeded or failed."""
        self.wait_for(lambda: self.run(dag_id, run_id)["state"] in FINISHED, f"{dag_id} {run_id} to finish", timeout)
        return self.run(dag_id, run_id)

    def log_lines(self, dag_id: str, run_id: str, task_id: str, attempt: int = 1) -> list[str]:
        """The task attempt's log as the UI shows its lines (Airflow 3 writes JSON events; no group markers)."""
        path = (
            self.home
            / "logs"
            / f"dag_id={dag_id}"
            / f"run_id={run_id}"
            / f"task_id={task_id}"
            / f"attempt={attempt}.log"
        )
        lines = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(raw)
            except json.JSONDecodeError:
                lines.append(raw)
                continue
            lines.append(str(event.get("event", "")) if isinstance(event, dict) else raw)
        return [line for line in lines if not line.startswith(("::group::", "::endgroup::"))]
