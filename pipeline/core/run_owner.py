"""Which run a process belongs to: the ``meltano run`` that started it, named the same in all its processes.

Apart from ``pipeline.runs.locks`` (which needs a database driver) because the taps need
the run's name too, without a driver: on object storage a tap writes its day files
into the run's own folder (``pipeline.days.handover``), which the target, the publish and
the locks' claim name alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
from pathlib import Path


def start_ticks(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot); with the pid, it names one process on this host."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _is_meltano(pid: int) -> bool:
    """Whether ``pid`` runs the ``meltano`` command (``meltano``, ``python .../meltano``, ``python -m meltano``)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(arg.decode("utf-8", "replace")).name == "meltano" for arg in argv[:3])


@dataclasses.dataclass(frozen=True)
class RunOwner:
    """The process whose life is the run: Meltano when it started this writer, else the writer itself."""

    pid: int
    start: str
    host: str

    @property
    def token(self) -> str:
        """A short id of this run, the same in every writer of the run, unique across hosts and time."""
        return hashlib.sha256(f"{self.host}:{self.pid}:{self.start}".encode()).hexdigest()[:12]

    def application_name(self, role: str, pid: int | None = None) -> str:
        """What ``pg_stat_activity`` shows for a lock holder of this run: the run, and the holding process.

        The keeper shows the run's owner; a writer shows itself, which may outlive the
        owner. Postgres keeps 63 bytes.
        """
        return f"{role} {self.token} {self.host[:24]}:{pid or self.pid}"


def run_owner() -> RunOwner:
    """The owner of the run this process belongs to."""
    parent = os.getppid()
    pid = parent if _is_meltano(parent) else os.getpid()
    return RunOwner(pid=pid, start=start_ticks(pid) or "?", host=socket.gethostname())
