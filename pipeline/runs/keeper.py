"""The keeper: the process that holds a run's lock for as long as its ``meltano run`` lives."""

from __future__ import annotations

import datetime as dt
import os
import select
import socket
import subprocess
import sys
import threading
import time
from typing import TextIO

import psycopg

from pipeline.core.errors import PipelineError, TransientPipelineError, first_line
from pipeline.core.run_owner import RunOwner, start_ticks
from pipeline.runs.advisory import RUN_APP, connect_lock_session, lock_key, try_lock
from pipeline.runs.fencing import record_claim

_LIVENESS_SECONDS = 0.5
# The keepers this process started as new interpreters: kept (not reaped) until the process exits.
_keepers: list[subprocess.Popen[str]] = []
# Exit code of a keeper whose session ended while its run lived.
LOST_EXIT_CODE = 3


def start_keeper(job: str, day: dt.date, owner: RunOwner) -> bool:
    """Start the keeper of the run lock for ``owner``; True once it holds the lock, False if it is taken.

    The run's first writer waits for the keeper's answer, so the keeper's start-up is
    on the job's critical path: a single-threaded writer (``pipeline claim``, the first
    task of every job) forks it, with psycopg already imported; a writer that runs
    threads, where a fork is unsafe, starts it as a new interpreter instead.
    """
    if threading.active_count() == 1:
        return _answer(*_fork_keeper(job, day, owner))
    keeper = subprocess.Popen(
        [sys.executable, "-m", "pipeline.runs.keeper", job, day.isoformat(), str(owner.pid), owner.start],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # never Meltano's pipes: the keeper outlives this process
        text=True,
    )
    assert keeper.stdout is not None
    answer = keeper.stdout.readline().strip()
    keeper.stdout.close()
    if answer == "held":
        _keepers.append(keeper)
        return True
    return _answer(answer, keeper.wait())


def _fork_keeper(job: str, day: dt.date, owner: RunOwner) -> tuple[str, int]:
    """Fork the keeper; its answer line, and its exit code when it did not keep the lock (else 0)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the keeper
        code = 1
        try:
            # Nothing of the writer's: not Meltano's pipes (the keeper outlives the writer),
            # not its lock connections (their locks must end with the writer).
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.closerange(3, write_end)
            os.closerange(write_end + 1, os.sysconf("SC_OPEN_MAX"))
            with os.fdopen(write_end, "w") as answer:
                code = keep(job, day, owner, answer)
        finally:
            os._exit(code)  # never the writer's exit handlers, which would close its connections
    os.close(write_end)
    with os.fdopen(read_end) as answer:
        line = answer.readline().strip()
    return line, 0 if line == "held" else os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _answer(answer: str, code: int) -> bool:
    """The keeper's answer as a result: True "held", False "taken", else the failure."""
    if answer in ("held", "taken"):
        return answer == "held"
    reason = answer.removeprefix("error ") if answer else f"its keeper process exited with code {code}"
    raise TransientPipelineError(f"cannot take the run lock: {reason}")


def _watch(owner: RunOwner, conn: psycopg.Connection) -> None:
    """Return when ``owner`` has exited; raise ``psycopg.OperationalError`` once ``conn``'s session is gone.

    The session is checked every ``_LIVENESS_SECONDS``, so a keeper whose lock ended
    with its session exits soon after, instead of pretending to hold it.
    """
    try:
        pidfd: int | None = os.pidfd_open(owner.pid)
    except ProcessLookupError:
        return
    except OSError:  # no pidfd on this kernel: poll the process too
        pidfd = None
    try:
        while start_ticks(owner.pid) == owner.start:
            if pidfd is not None and select.select([pidfd], [], [], _LIVENESS_SECONDS)[0]:
                return
            if pidfd is None:
                time.sleep(_LIVENESS_SECONDS)
            conn.execute("SELECT 1")
    finally:
        if pidfd is not None:
            os.close(pidfd)


def keep(job: str, day: dt.date, owner: RunOwner, answer: TextIO = sys.stdout) -> int:
    """The keeper: take and hold ``job``'s run lock for ``day`` while the owner lives; claim the day.

    Says "held", "taken" or "error ..." first, in one line on ``answer``, which is
    closed after "held": the writer that started the keeper reads that one line,
    then goes on (and may exit). Exits with ``LOST_EXIT_CODE`` when its session ends
    while the owner lives.
    """
    try:
        conn = connect_lock_session(owner.application_name(RUN_APP))
    except PipelineError as exc:
        print(f"error {exc}", file=answer, flush=True)
        return 1
    with conn:
        try:
            if not try_lock(conn, lock_key("run", job, day)):
                print("taken", file=answer, flush=True)
                return 1
            record_claim(conn, job, day, owner.token)
        except psycopg.Error as exc:
            print(f"error {first_line(exc)}", file=answer, flush=True)
            return 1
        print("held", file=answer, flush=True)
        if answer is sys.stdout:  # the writer reads one line only
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        else:
            answer.close()
        try:
            _watch(owner, conn)
        except psycopg.OperationalError:
            return LOST_EXIT_CODE
    return 0


if __name__ == "__main__":
    job_name, iso_day, owner_pid, owner_start = sys.argv[1:5]
    sys.exit(
        keep(job_name, dt.date.fromisoformat(iso_day), RunOwner(int(owner_pid), owner_start, socket.gethostname()))
    )
