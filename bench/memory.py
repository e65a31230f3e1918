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
from typing import NamedTuple

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


def process_name(pid: int) -> str:
    """What a process runs, shortly: its program, or the script a Python runs (``target-analytics``)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = [Path(arg.decode(errors="replace")).name for arg in handle.read().split(b"\0") if arg]
    except OSError:
        return "?"
    if len(argv) > 1 and argv[0].startswith("python") and not argv[1].startswith("-"):
        return argv[1]
    return " ".join(argv[:3]) if argv and argv[0].startswith("python") else (argv[0] if argv else "?")


class Timing(NamedTuple):
    """A timed command: wall seconds, the peak RSS of its largest process and what that process ran."""

    seconds: float
    peak_rss_mb: float
    largest: str


class TreeMemory:
    """Samples the high-water RSS of every process below ``pid`` until stopped."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak_kb: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in tree(self.pid):
                self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), _peak_rss_kb(pid))
                if pid not in self.names:
                    self.names[pid] = process_name(pid)
            self._stop.wait(self.interval)

    def stop(self) -> tuple[float, str]:
        """Stop sampling; the largest process's peak RSS in MB and its name."""
        self._stop.set()
        self._thread.join()
        if not self.peak_kb:
            return 0.0, "?"
        pid = max(self.peak_kb, key=lambda known: self.peak_kb[known])
        return round(self.peak_kb[pid] / 1024, 1), self.names.get(pid, "?")


def timed(command: list[str], env: dict[str, str], log: Path) -> Timing:
    """Run ``command``; its wall seconds and largest process. Fails loudly."""
    return timed_pipeline([command], env, log)


def timed_pipeline(
    commands: list[list[str]], env: dict[str, str], log: Path, stdin: Path | None = None, stdout: Path | None = None
) -> Timing:
    """Run ``commands`` as a pipe (each one's output into the next), as a shell's ``a | b`` would, without a shell.

    The first reads ``stdin`` (else nothing), the last writes ``stdout`` (else the log);
    every stderr goes to the log. Returns the wall seconds until all ended and the
    largest process of any of their trees; a failure of any exits with its log.
    """
    start = time.perf_counter()
    processes: list[subprocess.Popen[bytes]] = []
    memories: list[TreeMemory] = []
    with log.open("wb") as out, (stdin or Path(os.devnull)).open("rb") as first_input:
        final_output = stdout.open("wb") if stdout else out
        try:
            for index, command in enumerate(commands):
                source = first_input if index == 0 else processes[-1].stdout
                last = index == len(commands) - 1
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=PROJECT_ROOT,
                        env=env,
                        stdin=source,
                        stdout=final_output if last else subprocess.PIPE,
                        stderr=out,
                    )
                )
                if index > 0 and source is not None:
                    source.close()  # the next process owns the pipe's read end now
                memories.append(TreeMemory(processes[-1].pid))
            codes = [process.wait() for process in processes]
        finally:
            if stdout:
                final_output.close()
    seconds = time.perf_counter() - start
    peak_rss_mb, largest = max(memory.stop() for memory in memories)
    for command, code in zip(commands, codes, strict=True):
        if code != 0:
            sys.exit(
                f"bench: {' '.join(command)} failed (exit {code}); its output is in {log}:\n{log.read_text()[-3000:]}"
            )
    return Timing(seconds, peak_rss_mb, largest)
