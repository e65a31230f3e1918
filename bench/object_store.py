"""Each job with ``DATA_DIR`` in an object store (a local SeaweedFS) against the same job on local disk, same run.

The store is ``weed server -s3`` started as the tests start it (``tests/s3server.py``:
free ports, a folder of the bench's work dir, one identity, stopped at the end), so
the figures are object storage's protocol and client costs on this machine, not a
network's. The jobs run for a day of their own (a first run of each, as the local
day's), in the same order as on local disk; each job's figures are its wall seconds
and largest process, beside the local run's; postgres-to-lfs's data phase too
(``bench.data_phase``: the COPYs to their final keys).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.data_phase import data_phase
from bench.memory import Timing, timed
from tests.s3server import running_s3_server

STORE_DAY = dt.date(2024, 1, 4)


def object_store_jobs(
    env: dict[str, str],
    jobs: tuple[str, ...],
    local: dict[str, Timing],
    copy_to_seconds: float,
    work: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Every job of ``jobs`` once with DATA_DIR on a fresh SeaweedFS; its entries beside the local ``Timing``s."""
    meltano = str(Path(env["MELTANO_PROJECT_ROOT"]) / ".venv" / "bin" / "meltano")
    entries = []
    with running_s3_server(work / "seaweedfs") as server:
        store_env = {**env, **server.env(), "DATA_DIR": f"s3://{server.bucket}/bench"}
        for job in jobs:
            say(f"running {job} with DATA_DIR on SeaweedFS ...")
            log = work / "logs" / f"{job}-s3.log"
            measured = timed([meltano, "run", job], {**store_env, "PIPELINE_DATE": STORE_DAY.isoformat()}, log)
            entries.append(
                {
                    "job": job,
                    "seconds": round(measured.seconds, 2),
                    "local_seconds": round(local[job].seconds, 2),
                    "speed_to_local": round(local[job].seconds / measured.seconds, 4),
                    "peak_rss_mb": measured.peak_rss_mb,
                    "largest_process": measured.largest,
                }
            )
    phase = data_phase(work / "logs" / "postgres-to-lfs-s3.log", copy_to_seconds) if "postgres-to-lfs" in jobs else None
    return {"jobs": entries, "data_phase": phase}
