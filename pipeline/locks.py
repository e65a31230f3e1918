"""One run of a job and day at a time, on any number of hosts, and a dead run never blocks its rerun.

The exclusion lives in Postgres session-level advisory locks in the analytics
database, which every worker reaches: a lock dies with the connection that holds
it, and the connection dies with its process (the kernel closes the socket of a
process killed with ``kill -9``), so nothing a crashed run leaves behind can block
its rerun; a file lock on NFS has neither property. Two locks per job and day:

* The **run lock** is held for the whole ``meltano run`` by a small *keeper*
  process that the run's first writer starts and that lives exactly as long as
  that Meltano process. It closes the gaps between the run's writers (the loader
  has exited, Meltano has not started the publish yet), so a second run of the
  same job and day cannot slip in between.
* The **writer lock** is held by each writing process (the loader, each publish
  step, the export) for its own life. When only ``meltano`` is killed, its keeper
  goes with it, but an orphaned loader or publish step still holds this lock, so a
  rerun waits for it instead of writing beside it.

A writer calls ``hold_run_lock(job, day)`` before it writes anything. It waits up
to ``PIPELINE_LOCK_WAIT_SECONDS`` (default 10) for each lock, then gives up with a
``TransientPipelineError`` naming the holder (an orchestrator retries it later).
Meltano's own guard against a second run of a state ID is not what excludes runs
(after a crash it would block the rerun for five minutes): see ``pipeline.meltano_runs``.

A lock can also end while its run goes on: a server restart, a failover or a
terminated backend ends the session that holds it. So whoever takes a run lock
records its run as the day's latest claimant (``pipeline.fencing``), and each commit
point (``fenced`` for files, ``check_run_holds`` inside the analytics publish's
transaction) checks, on the writer's own session, that its run still holds the run
lock and is still the latest claimant; if not, it fails as transient and changes
nothing. A run never takes its lock back: a writer that finds its run's lock gone
fails the same way. The keeper checks its session every ``_LIVENESS_SECONDS`` and
exits once it is gone. The lock sessions, idle by design, turn the server's idle
timeouts off for themselves (``pipeline.databases.SESSION_OPTIONS``).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

import psycopg

from pipeline.databases import ANALYTICS, connect
from pipeline.errors import PipelineError, TransientPipelineError, first_line
from pipeline.fencing import has_claimed, latest_claimant, record_claim
from pipeline.lfs import rerun_command
from pipeline.runs import RunOwner, run_owner, start_ticks

WAIT_ENV = "PIPELINE_LOCK_WAIT_SECONDS"
DEFAULT_WAIT_SECONDS = 10.0
RUN_APP = "pipeline-run"
WRITER_APP = "pipeline-writer"
_POLL_SECONDS = 0.25
_LIVENESS_SECONDS = 0.5

# This process's lock connection of each job and day it writes, and keeper: kept open until the process exits.
_held: dict[tuple[str, dt.date], psycopg.Connection] = {}
_keepers: list[subprocess.Popen[str]] = []
# Exit code of a keeper whose session ended while its run lived.
LOST_EXIT_CODE = 3


def lock_key(kind: str, job: str, day: dt.date) -> int:
    """The advisory lock key of ``kind`` ("run" or "writer") for ``job`` and ``day``: the same on every host."""
    digest = hashlib.sha256("\0".join(("northwind-pipeline", kind, job, day.isoformat())).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _wait_seconds() -> float:
    value = os.environ.get(WAIT_ENV) or str(DEFAULT_WAIT_SECONDS)
    try:
        return max(0.0, float(value))
    except ValueError as exc:
        raise PipelineError(f"{WAIT_ENV}={value!r} is not a number of seconds") from exc


def _connect(application_name: str) -> psycopg.Connection:
    """A lock session, named for ``pg_stat_activity`` (and, as every session of ours, immune to idle timeouts)."""
    try:
        conn = connect(ANALYTICS, autocommit=True)
    except TransientPipelineError as exc:
        raise TransientPipelineError(f"cannot reach the analytics database, which holds the run locks: {exc}") from exc
    conn.execute("SELECT set_config('application_name', %s, false)", (application_name,))
    return conn


def _holder(conn: psycopg.Connection, key: int) -> str | None:
    """The ``application_name`` of the session holding ``key`` ("" if hidden), or None if it is free."""
    row = conn.execute(
        """
        SELECT coalesce(a.application_name, '')
        FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid::int8 = %s AND l.objid::int8 = %s
        LIMIT 1
        """,
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    ).fetchone()
    return None if row is None else row[0]


def _try_lock(conn: psycopg.Connection, key: int) -> bool:
    return bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0])


def _describe(holder: str | None) -> str:
    """``pipeline-run <token> host:pid`` as words; the holder's own name when it is not one of ours."""
    parts = (holder or "").split(" ")
    if len(parts) == 3 and parts[0] in (RUN_APP, WRITER_APP):
        host, _, pid = parts[2].rpartition(":")
        return f"process {pid} on {host}"
    return f"session {holder!r}" if holder else "another session"


def _refusal(job: str, day: dt.date, what: str, holder: str | None, wait: float) -> TransientPipelineError:
    return TransientPipelineError(
        f"refused: {job} for {day} is {what} ({_describe(holder)}, holding the lock in the analytics database); "
        f"waited {wait:g}s ({WAIT_ENV}); retry when it has finished: {rerun_command(job, day)}"
    )


def _start_keeper(job: str, day: dt.date, owner: RunOwner) -> bool:
    """Start the keeper of the run lock for ``owner``; True once it holds the lock, False if it is taken.

    The run's first writer waits for the keeper's answer, so the keeper's start-up is
    on the job's critical path: a single-threaded writer (``pipeline claim``, the first
    task of every job) forks it, with psycopg already imported; a writer that runs
    threads, where a fork is unsafe, starts it as a new interpreter instead.
    """
    if threading.active_count() == 1:
        return _answer(*_fork_keeper(job, day, owner))
    keeper = subprocess.Popen(
        [sys.executable, "-m", "pipeline.locks", job, day.isoformat(), str(owner.pid), owner.start],
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


def _holds(holder: str | None, owner: RunOwner) -> bool:
    """Whether the lock holder named ``holder`` is of ``owner``'s run (its keeper, or the run itself by hand)."""
    parts = (holder or "").split(" ")
    return len(parts) == 3 and parts[0] in (RUN_APP, WRITER_APP) and parts[1] == owner.token


def _lost(job: str, day: dt.date, reason: str) -> TransientPipelineError:
    return TransientPipelineError(
        f"{job} for {day} lost its run lock: {reason}; this run changes nothing more; rerun: {rerun_command(job, day)}"
    )


_SESSION_ENDED = (
    "the session holding it in the analytics database ended (a server restart, a failover, a terminated backend)"
)


def _join_run(conn: psycopg.Connection, owner: RunOwner, job: str, day: dt.date, wait: float) -> None:
    """Make sure the run lock is held by ``owner``'s keeper: find it, or start it, or give up.

    A run whose lock is gone (it claimed the day, but no session of it holds the lock)
    has lost it: the lock is never taken back, since another run may have written
    the day in between.
    """
    key = lock_key("run", job, day)
    deadline = time.monotonic() + wait
    while True:
        holder = _holder(conn, key)
        if holder is None and has_claimed(conn, job, day, owner.token):
            raise _lost(job, day, _SESSION_ENDED)
        if holder is None and _start_keeper(job, day, owner):
            return
        if _holds(holder, owner):
            return
        if time.monotonic() >= deadline:
            raise _refusal(job, day, "already running", holder or _holder(conn, key), wait)
        time.sleep(_POLL_SECONDS)


def _lock_or_refuse(conn: psycopg.Connection, key: int, job: str, day: dt.date, what: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while not _try_lock(conn, key):
        if time.monotonic() >= deadline:
            raise _refusal(job, day, what, _holder(conn, key), wait)
        time.sleep(_POLL_SECONDS)


def _release_held() -> None:
    """Close the held connections at exit (their locks go with them), not leave them to the collector.

    Left open, every job's log would end with psycopg's ResourceWarning about a
    connection deleted while open. A kill skips this, and the server ends the
    session, and so the locks, all the same.
    """
    for conn in _held.values():
        conn.close()


atexit.register(_release_held)


def hold_run_lock(job: str, day: dt.date) -> None:
    """Hold ``job``'s locks for ``day`` until this process exits; refuse if another run holds them.

    Call it before writing anything. Under ``meltano run`` the run lock is held by
    the run's keeper (started here if this is the run's first writer); run by hand,
    this process holds it itself.
    """
    if (job, day) in _held:
        return
    wait = _wait_seconds()
    owner = run_owner()
    conn = _connect(owner.application_name(WRITER_APP, os.getpid()))
    _held[(job, day)] = conn
    if owner.pid == os.getpid():
        _lock_or_refuse(conn, lock_key("run", job, day), job, day, "already running", wait)
        record_claim(conn, job, day, owner.token)
    else:
        _join_run(conn, owner, job, day, wait)
    _lock_or_refuse(
        conn, lock_key("writer", job, day), job, day, "still being written by an earlier run's leftover process", wait
    )


def check_run_holds(conn: psycopg.Connection, job: str, day: dt.date) -> None:
    """Fail, transient, unless this process's run holds ``job``'s run lock for ``day`` and is its latest claimant.

    Call it in the transaction of a commit point: it locks the claim until that
    transaction ends, so no newer run can claim the day before the commit.
    """
    owner = run_owner()
    claimant = latest_claimant(conn, job, day)
    holder = _holder(conn, lock_key("run", job, day))
    if claimant != owner.token:
        raise _lost(job, day, "another run has claimed the day since")
    if holder is None:
        raise _lost(job, day, _SESSION_ENDED)
    if not _holds(holder, owner):
        raise _lost(job, day, f"{_describe(holder)} holds it now")


@contextlib.contextmanager
def fenced(job: str, day: dt.date) -> Iterator[Callable[[], None]]:
    """A commit point on files: yields the check to call before each change, see ``check_run_holds``.

    The check runs on this writer's own lock session (``hold_run_lock`` first), whose
    transaction stays open for the block, so a newer claim waits until the block ends;
    a session that has ended fails the check.
    """
    conn = _held[(job, day)]
    try:
        with conn.transaction():
            check = functools.partial(check_run_holds, conn, job, day)
            check()
            yield check
    except psycopg.OperationalError as exc:
        if not (conn.broken or conn.closed):
            raise  # another connection of the block failed: its step says how
        raise _lost(job, day, f"{_SESSION_ENDED}: {first_line(exc)}") from exc


@dataclasses.dataclass(frozen=True)
class IdleDay:
    """What ``day_if_idle`` yields: who keeps the day busy (then nothing is held), and the commit points' check."""

    busy: str | None
    check: Callable[[], None]


def _count_held(conn: psycopg.Connection) -> int:
    """How many advisory locks this session holds."""
    query = "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND granted"
    return conn.execute(query).fetchone()[0]


def _check_still_held(conn: psycopg.Connection, day: dt.date, purpose: str, expected: int) -> None:
    """Fail, transient, unless ``conn``'s session is alive and holds the ``expected`` locks of the day."""
    try:
        held = _count_held(conn)
    except psycopg.OperationalError as exc:
        raise TransientPipelineError(f"{purpose} of {day} lost its locks: {_SESSION_ENDED}: {first_line(exc)}") from exc
    if held != expected:
        raise TransientPipelineError(f"{purpose} of {day} lost its locks: it holds {held} of {expected}")


@contextlib.contextmanager
def day_if_idle(jobs: Iterable[str], day: dt.date, purpose: str) -> Iterator[IdleDay]:
    """Hold the run and writer locks of every one of ``jobs`` for ``day`` during the block, if all are free.

    Yields ``busy`` None while holding them all, so no run of the day can start
    meanwhile; or, holding none, which job is running for the day and who holds it:
    a maintenance step (retention) then leaves the day alone instead of waiting.
    Its ``check`` fails, transient, once the session holding the locks has ended:
    call it before each change.
    """
    jobs = list(jobs)
    with _connect(f"{purpose} {socket.gethostname()[:24]}:{os.getpid()}") as conn:
        check = functools.partial(_check_still_held, conn, day, purpose, 2 * len(jobs))
        for job in jobs:
            for kind in ("run", "writer"):
                key = lock_key(kind, job, day)
                if not _try_lock(conn, key):
                    holder = _holder(conn, key)
                    conn.execute("SELECT pg_advisory_unlock_all()")
                    yield IdleDay(f"{job} is running for it ({_describe(holder)})", check)
                    return
        try:
            yield IdleDay(None, check)
        finally:
            if not conn.closed and not conn.broken:
                conn.execute("SELECT pg_advisory_unlock_all()")


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
        conn = _connect(owner.application_name(RUN_APP))
    except PipelineError as exc:
        print(f"error {exc}", file=answer, flush=True)
        return 1
    with conn:
        try:
            if not _try_lock(conn, lock_key("run", job, day)):
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
