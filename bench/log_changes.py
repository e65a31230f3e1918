"""Issue 19's cost for LOG_BASED: ``bench.changes``' table and changes, on a throwaway ``wal_level=logical`` cluster.

Why a cluster of its own: LOG_BASED needs ``wal_level=logical``, which takes a server
restart, and the bench must not restart (or require) the server it is pointed at. So
the table is built again there, read ``LOG_BASED`` (a first day, ``CHANGED`` rows
updated, the measured day) and ``FULL_TABLE`` (a day of its own), both on that
cluster, so the two figures compare like with like. The cluster is started and
removed by ``tests/integration/cluster.py``, the one helper that starts throwaway
clusters (initdb and pg_ctl on a free port).

The data phase of step 1 is the tap's own timings: ``Read the LOG_BASED changes``
(the slot's snapshot export, the peek of the day's log and its fold) plus the COPY of
the changed keys' rows; step 2's as for the other modes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.changes import FIRST, FULL, MEASURED, SCHEMA, TABLE, _change_rows, _create_source, _day, _rows, base_env
from pipeline.databases import ADMIN, ANALYTICS, SOURCE
from pipeline.log_based import LOG_BASED, REPLICATION
from pipeline.provision import provision
from pipeline.replication import provision_log_based
from tests.integration.cluster import ADMIN as CLUSTER_ADMIN
from tests.integration.cluster import throwaway_cluster

LOG_TABLES = {SCHEMA: {TABLE: {"replication-method": LOG_BASED}}}


def log_based_bench(env: dict[str, str], work: Path, rows: int, say: Callable[[str], None]) -> dict[str, Any]:
    """LOG_BASED's and FULL_TABLE's measured days on the cluster (module docstring), for ``bench.changes``' result."""
    say(f"changes: the same {rows} rows on a throwaway wal_level=logical cluster, LOG_BASED and FULL_TABLE ...")
    logs = work / "logs"
    data_dir = work / "changes-data-logical"
    with throwaway_cluster({"wal_level": "logical"}) as cluster:
        server = {f"{prefix}_{name}": value for prefix in (SOURCE, ANALYTICS) for name, value in
                  (("HOST", "127.0.0.1"), ("PORT", str(cluster.port)))}  # fmt: skip
        cluster_env = {
            **env,
            **server,
            f"{ADMIN}_USER": CLUSTER_ADMIN,
            f"{ADMIN}_PASSWORD": "",
            f"{SOURCE}_DATABASE": "bench_source",
            f"{ANALYTICS}_DATABASE": "bench_analytics",
            f"{REPLICATION}_USER": "bench_replication",
            f"{REPLICATION}_PASSWORD": "bench_replication",
        }
        provision(None, cluster_env)
        _create_source(cluster_env, rows)
        base = base_env(cluster_env, work, data_dir)
        log_env = {**base, "DATA_DIR": str(data_dir / "log_based"), f"{SOURCE}_TABLES": json.dumps(LOG_TABLES)}
        provision_log_based(log_env)
        _day(log_env, FIRST, logs, LOG_BASED)
        _change_rows(cluster_env, rows)
        log_based = _day(log_env, MEASURED, logs, LOG_BASED)
        full = _day({**base, "DATA_DIR": str(data_dir / "full"), f"{SOURCE}_TABLES": ""}, FULL, logs, "FULL-logical")
    result = {
        "log_based": {**log_based, "rows_read": _rows(data_dir / "log_based", MEASURED)},
        "log_full_table": {**full, "rows_read": _rows(data_dir / "full", FULL)},
    }
    total = {mode: result[mode]["step1_seconds"] + result[mode]["step2_seconds"] for mode in result}
    result["log_based_share_of_full_table"] = round(total["log_based"] / total["log_full_table"], 4)
    return result
