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
(after a crash it would block the rerun for five minutes): see ``pipeline.runs.meltano_records``.

A lock can also end while its run goes on: a server restart, a failover or a
terminated backend ends the session that holds it. So whoever takes a run lock
records its run as the day's latest claimant (``pipeline.runs.fencing``), and each commit
point (``fenced`` for files, ``check_run_holds`` inside the analytics publish's
transaction) checks, on the writer's own session, that its run still holds the run
lock and is still the latest claimant; if not, it fails as transient and changes
nothing. A run never takes its lock back: a writer that finds its run's lock gone
fails the same way. The keeper checks its session every ``_LIVENESS_SECONDS`` and
exits once it is gone. The lock sessions, idle by design, turn the server's idle
timeouts off for themselves (``pipeline.core.connections.SESSION_OPTIONS``).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime as dt
import functools
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator

import psycopg

from pipeline.core.commands import rerun_command
from pipeline.core.errors import PipelineError, TransientPipelineError, first_line
from pipeline.core.run_owner import RunOwner, run_owner
from pipeline.runs.advisory import (
    SESSION_ENDED,
    WRITER_APP,
    connect_lock_session,
    describe_holder,
    held_by_run,
    lock_holder,
    lock_key,
    try_lock,
)
from pipeline.runs.fencing import has_claimed, latest_claimant, record_claim
from pipeline.runs.keeper import start_keeper

WAIT_ENV = "PIPELINE_LOCK_WAIT_SECONDS"
DEFAULT_WAIT_SECONDS = 10.0


_POLL_SECONDS = 0.25


# This process's lock connection of each job and day it writes: kept open until the process exits.
_held: dict[tuple[str, dt.date], psycopg.Connection] = {}


def _wait_seconds() -> float:
    value = os.environ.get(WAIT_ENV) or str(DEFAULT_WAIT_SECONDS)
    try:
        return max(0.0, float(value))
    except ValueError as exc:
        raise PipelineError(f"{WAIT_ENV}={value!r} is not a number of seconds") from exc


def _refusal(job: str, day: dt.date, what: str, holder: str | None, wait: float) -> TransientPipelineError:
    return TransientPipelineError(
        f"refused: {job} for {day} is {what} ({describe_holder(holder)}, holding the lock in the analytics database); "
        f"waited {wait:g}s ({WAIT_ENV}); retry when it has finished: {rerun_command(job, day)}"
    )


def _lost(job: str, day: dt.date, reason: str) -> TransientPipelineError:
    return TransientPipelineError(
        f"{job} for {day} lost its run lock: {reason}; this run changes nothing more; rerun: {rerun_command(job, day)}"
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
        holder = lock_holder(conn, key)
        if holder is None and has_claimed(conn, job, day, owner.token):
            raise _lost(job, day, SESSION_ENDED)
        if holder is None and start_keeper(job, day, owner):
            return
        if held_by_run(holder, owner):
            return
        if time.monotonic() >= deadline:
            raise _refusal(job, day, "already running", holder or lock_holder(conn, key), wait)
        time.sleep(_POLL_SECONDS)


def _lock_or_refuse(conn: psycopg.Connection, key: int, job: str, day: dt.date, what: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while not try_lock(conn, key):
        if time.monotonic() >= deadline:
            raise _refusal(job, day, what, lock_holder(conn, key), wait)
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
    conn = connect_lock_session(owner.application_name(WRITER_APP, os.getpid()))
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
    holder = lock_holder(conn, lock_key("run", job, day))
    if claimant != owner.token:
        raise _lost(job, day, "another run has claimed the day since")
    if holder is None:
        raise _lost(job, day, SESSION_ENDED)
    if not held_by_run(holder, owner):
        raise _lost(job, day, f"{describe_holder(holder)} holds it now")


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
        raise _lost(job, day, f"{SESSION_ENDED}: {first_line(exc)}") from exc


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
        raise TransientPipelineError(f"{purpose} of {day} lost its locks: {SESSION_ENDED}: {first_line(exc)}") from exc
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
    with connect_lock_session(f"{purpose} {socket.gethostname()[:24]}:{os.getpid()}") as conn:
        check = functools.partial(_check_still_held, conn, day, purpose, 2 * len(jobs))
        for job in jobs:
            for kind in ("run", "writer"):
                key = lock_key(kind, job, day)
                if not try_lock(conn, key):
                    holder = lock_holder(conn, key)
                    conn.execute("SELECT pg_advisory_unlock_all()")
                    yield IdleDay(f"{job} is running for it ({describe_holder(holder)})", check)
                    return
        try:
            yield IdleDay(None, check)
        finally:
            if not conn.closed and not conn.broken:
                conn.execute("SELECT pg_advisory_unlock_all()")
