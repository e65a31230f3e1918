"""The run lock on a real Postgres: held while its holder lives, gone the moment it is killed."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.core.connections import ANALYTICS, connect
from pipeline.core.errors import TransientPipelineError
from pipeline.runs.advisory import lock_key
from pipeline.runs.locks import day_if_idle
from pipeline.setup.databases import drop_database, ensure_database
from pipeline.setup.roles import grant_analytics_owner
from tests.conftest import PROJECT_ROOT


def hold(job: str, day: str) -> str:
    """Python code that takes ``job``'s locks for ``day`` (run by hand: this process is the run)."""
    return (
        "import datetime; from pipeline.runs.locks import hold_run_lock; "
        f"hold_run_lock({job!r}, datetime.date.fromisoformat({day!r})); print('held', flush=True)"
    )


@pytest.fixture
def env(base_env: dict[str, str]) -> Iterator[dict[str, str]]:
    env = {**base_env, "TARGET_POSTGRES_DATABASE": f"test_locks_{uuid.uuid4().hex[:10]}", "PYTHONPATH": "."}
    ensure_database(ANALYTICS, env)
    grant_analytics_owner(env)  # the claims register lives in its schema pipeline
    try:
        yield env
    finally:
        drop_database(ANALYTICS, env)


def holder(env: dict[str, str]) -> subprocess.Popen[str]:
    """A process that takes csv-to-lfs's locks for 2024-01-02 and keeps them until it is killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", hold("csv-to-lfs", "2024-01-02") + "; import time; time.sleep(600)"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "held\n"
    return process


def take(env: dict[str, str], job: str = "csv-to-lfs", day: str = "2024-01-02") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", hold(job, day)],
        cwd=PROJECT_ROOT,
        env={**env, "PIPELINE_LOCK_WAIT_SECONDS": "0"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_key_is_stable_and_differs_per_kind_job_and_day() -> None:
    assert lock_key("run", "csv-to-lfs", dt.date(2024, 1, 2)) == lock_key("run", "csv-to-lfs", dt.date(2024, 1, 2))
    keys = {
        lock_key(kind, job, day)
        for kind in ("run", "writer")
        for job in ("csv-to-lfs", "postgres-to-lfs")
        for day in (dt.date(2024, 1, 2), dt.date(2024, 1, 3))
    }
    assert len(keys) == 8
    assert all(-(2**63) <= key < 2**63 for key in keys)


def test_a_second_holder_is_refused_naming_the_first_and_a_killed_one_frees_it_at_once(env: dict[str, str]) -> None:
    first = holder(env)
    try:
        refused = take(env)
        assert refused.returncode != 0
        assert "TransientPipelineError: refused: csv-to-lfs for 2024-01-02 is already running" in refused.stderr
        assert f"(process {first.pid} on " in refused.stderr
        assert "PIPELINE_DATE=2024-01-02 .venv/bin/meltano run csv-to-lfs" in refused.stderr
        assert take(env, day="2024-01-03").returncode == 0  # another day
        assert take(env, job="postgres-to-lfs").returncode == 0  # another job
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()

    assert take(env).returncode == 0  # no waiting: the lock died with its holder


# A stand-in for `meltano run`: a process named `meltano` that runs one writer (a thread
# beside it or not, so the keeper is forked or started as a new interpreter), then
# waits until stdin closes, as a run lives on after its first task.
FAKE_MELTANO = """
import subprocess, sys
writer = "import threading, time; threading.Thread(target=time.sleep, args=(5,), daemon=True).start(); " * {threads}
writer += {hold!r}
subprocess.run([sys.executable, "-c", writer], check=True)
print("writer exited", flush=True)
sys.stdin.read()
"""


def held_locks(env: dict[str, str]) -> set[str]:
    """Which of csv-to-lfs's locks for 2024-01-02 are held: "run", "writer"."""
    keys = {lock_key(kind, "csv-to-lfs", dt.date(2024, 1, 2)): kind for kind in ("run", "writer")}
    with connect(ANALYTICS, env) as conn:
        rows = conn.execute(
            "SELECT (classid::int8 << 32) | objid::int8 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
    return {keys[key] for (key,) in rows if key in keys}


@pytest.mark.parametrize("threads", [0, 1], ids=["forked-keeper", "new-interpreter-keeper"])
def test_the_keeper_holds_the_run_lock_for_as_long_as_meltano_lives(
    env: dict[str, str], tmp_path: Path, threads: int
) -> None:
    meltano = tmp_path / "meltano"
    meltano.write_text(FAKE_MELTANO.format(threads=threads, hold=hold("csv-to-lfs", "2024-01-02")))
    run = subprocess.Popen(
        [sys.executable, str(meltano)],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    assert run.stdin is not None
    try:
        assert run.stdout.readline() == "held\n"
        assert run.stdout.readline() == "writer exited\n"
        # The writer's own lock went with it; the run lock stays with the run.
        assert held_locks(env) == {"run"}
        refused = take(env)
        assert f"(process {run.pid} on " in refused.stderr
    finally:
        run.stdin.close()
        run.wait()
    deadline = time.monotonic() + 30
    while held_locks(env) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert held_locks(env) == set()


# A stand-in for `meltano run` whose second writer starts when a line arrives on stdin
# and reports how it ended: its exit code and its last stderr line.
FAKE_MELTANO_TWO_WRITERS = """
import subprocess, sys
subprocess.run([sys.executable, "-c", {hold!r}], check=True, stdout=subprocess.DEVNULL)
print("first writer exited", flush=True)
sys.stdin.readline()
second = subprocess.run([sys.executable, "-c", {hold!r}], capture_output=True, text=True)
print(second.returncode, (second.stderr.strip().splitlines() or [""])[-1], flush=True)
"""


def session_members(session: int) -> set[int]:
    """The processes of ``session`` (its id is its leader's pid)."""
    members = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:
            members.add(int(stat.parent.name))
    return members


def test_a_run_whose_lock_session_ended_never_takes_the_lock_back_and_its_keeper_exits(
    env: dict[str, str], tmp_path: Path
) -> None:
    meltano = tmp_path / "meltano"
    meltano.write_text(FAKE_MELTANO_TWO_WRITERS.format(hold=hold("csv-to-lfs", "2024-01-02")))
    run = subprocess.Popen(
        [sys.executable, str(meltano)],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert run.stdout is not None
    assert run.stdin is not None
    try:
        assert run.stdout.readline() == "first writer exited\n"
        assert len(session_members(run.pid)) == 2  # the stand-in and the run's keeper
        with connect(ANALYTICS, env, admin=True, autocommit=True) as admin:
            admin.execute(  # as a failover or a restart ends it
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND starts_with(application_name, 'pipeline-run ')"
            )
        deadline = time.monotonic() + 30
        while len(session_members(run.pid)) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert session_members(run.pid) == {run.pid}, "the keeper did not notice that its session ended"

        run.stdin.write("\n")
        run.stdin.flush()
        code, message = run.stdout.readline().strip().split(" ", 1)
        assert code != "0"
        assert "csv-to-lfs for 2024-01-02 lost its run lock: the session holding it" in message
        assert held_locks(env) == set()
    finally:
        run.stdin.close()
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()


def test_a_prune_whose_lock_session_ended_is_stopped_by_its_check(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # this process is the prune
    with day_if_idle(["csv-to-lfs"], dt.date(2024, 1, 2), "pipeline-prune") as hold:
        assert hold.busy is None
        hold.check()  # holding the day: the prune may go on
        with connect(ANALYTICS, env, admin=True, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND starts_with(application_name, 'pipeline-prune ')"
            )
        with pytest.raises(TransientPipelineError, match="pipeline-prune of 2024-01-02 lost its locks: the session"):
            hold.check()
    assert take(env).returncode == 0  # the day is free again
