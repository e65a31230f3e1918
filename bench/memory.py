"""Peak RSS of a process tree, and commands timed with it.

Each process's ``VmHWM`` (its own high-water RSS) is read from /proc every 0.1 s for
every process below the command, so a short-lived plugin process is still caught
with its peak; the figure is the largest process's, which is what must fit a small
machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _stat_fields(pid: str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, pgrp, session, ...)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children_map() -> dict[int, list[int]]:
    """Every process's children, by parent pid."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _stat_fields(entry.name)):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def session_members(session: int) -> list[int]:
    """The processes of a session (those that left it with setsid are not listed)."""
    return [
        int(entry.name)
        for entry in os.scandir("/proc")
        if entry.name.isdigit() and (fields := _stat_fields(entry.name)) and int(fields[3]) == session
    ]


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children = children_map()
    pending, found = [pid], []
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def _peak_rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory:
    """Samples the high-water RSS of every process below ``pid`` until stopped."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in tree(self.pid):
                self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), _peak_rss_kb(pid))
            self._stop.wait(self.interval)

    def stop(self) -> float:
        """Stop sampling; the largest process's peak RSS in MB."""
        self._stop.set()
        self._thread.join()
        return round(max(self.peak_kb.values(), default=0) / 1024, 1)


def timed(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run ``command``; return (wall seconds, peak RSS MB of its largest process). Fails loudly."""
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        memory = TreeMemory(process.pid)
        code = process.wait()
    seconds = time.perf_counter() - start
    peak = memory.stop()
    if code != 0:
        sys.exit(f"bench: {' '.join(command)} failed (exit {code}); its output is in {log}:\n{log.read_text()[-3000:]}")
    return seconds, peak
