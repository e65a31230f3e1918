"""Step 1's data phase: the tap's COPYs of the tables to their final place, without process start-up.

Read from the job's own log: tap-postgres-native logs each table's COPY as
``Copied <rows> rows of <stream> to <path> in <seconds> s`` (``copy_stream.get_batches``:
from opening the day file to its sha256, i.e. the COPY, the hash and the write, the
header included). Their sum is the data phase, which ``make bench`` sets beside psql's
``COPY TO`` of the same tables; the whole job adds Meltano's and the plugins' start-up,
discovery, the snapshot's locks, the target's adoption and the publish.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_COPIED = re.compile(r"Copied (\d+) rows of .* in ([0-9.]+) s\s*$")
PART = "data phase"


def data_phase(log: Path, copy_to_seconds: float) -> dict[str, Any]:
    """The data phase as a part of the job's entry: rows, seconds, rows/s, and psql's COPY TO seconds beside it."""
    rows, seconds = 0, 0.0
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if match := _COPIED.search(line):
            rows += int(match.group(1))
            seconds += float(match.group(2))
    if not seconds:
        raise SystemExit(f"bench: no 'Copied ... rows ... in ... s' line of tap-postgres-native in {log}")
    return {
        "part": PART,
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "psql_seconds": round(copy_to_seconds, 2),
    }
