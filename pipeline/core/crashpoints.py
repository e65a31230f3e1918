"""Test-only pause points, so a test can kill a job, or change its source, at an exact place.

A crash test must kill a job *between* two particular steps (between two folder
swaps, inside the analytics transaction, ...), which timing can never hit reliably.
With ``PIPELINE_TEST_PAUSE_AT=<point>`` set, the process that reaches ``<point>``
writes its pid to the file named by ``PIPELINE_TEST_PAUSE_MARKER`` and waits there
while that file exists, at most ``PIPELINE_TEST_PAUSE_SECONDS`` (default 600): the
test knows that the job is there, kills it, or deletes the file to let it go on.
Off by default: unset, ``pause_point`` is one dictionary lookup. Never set these
outside tests.

The points, in the order a job reaches them:

``source-snapshot``   tap-postgres-native has discovered the source's tables, not yet locked
                      them (a test changes a table there: the run must notice)
``day-file``          a tap has written part of a table's day file (its first block, or a small
                      table's all), not yet closed it nor handed it over (``pipeline.days.handover``)
``extract``           the loader is writing the day (the extract is running)
``before-publish``    the Singer pair has exited, the publish step has not changed anything
``history-move``      step 1's publish (or a restore) has moved the first folder of the
                      replaced version into the day's history, not the others
``publish-swap``      step 1's publish has swapped its first day folder, not the others
``analytics-publish`` inside the analytics publish's transaction, before it commits
``export-before-swap`` the export has written the result's files, not yet put them in place
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pipeline.core.files import write_text_atomic

PAUSE_AT_ENV = "PIPELINE_TEST_PAUSE_AT"
MARKER_ENV = "PIPELINE_TEST_PAUSE_MARKER"
SECONDS_ENV = "PIPELINE_TEST_PAUSE_SECONDS"

_paused: set[str] = set()


def pause_point(name: str) -> None:
    """Pause here once per process if ``PIPELINE_TEST_PAUSE_AT`` names this point (tests only)."""
    if os.environ.get(PAUSE_AT_ENV) != name or name in _paused:
        return
    _paused.add(name)
    deadline = time.monotonic() + float(os.environ.get(SECONDS_ENV) or 600)
    marker = os.environ.get(MARKER_ENV)
    if not marker:
        time.sleep(max(0.0, deadline - time.monotonic()))
        return
    path = Path(marker)
    write_text_atomic(path, f"{os.getpid()} {name}\n")
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
