"""Issue 19's cost for LOG_BASED: ``bench.changes``' table and changes, on a throwaway ``wal_level=logical`` cluster.

Why a cluster of its own: LOG_BASED needs ``wal_level=logical``, which takes a server
restart, and the bench must not restart (or require) the server it is pointed at. So
the source table is built again there, read ``LOG_BASED`` (a first day, ``CHANGED``
rows updated, the measured day) and ``FULL_TABLE`` (a day of its own), both from that
cluster, so the two figures compare like with like. The analytics database stays on
the bench's server (a database of its own, dropped afterwards): on the source's
server, step 2's loads would be WAL that the next day's read of the log must decode
through (a slot reads the whole server's WAL), which a separate analytics server
does not cost. The cluster is started and
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
from pipeline.core.connections import ADMIN, ANALYTICS, SOURCE
from pipeline.setup.databases import drop_database, ensure_database
from pipeline.setup.replication import provision_log_based
from pipeline.setup.roles import grant_analytics_owner, grant_source_reader
from pipeline.source.log_based import LOG_BASED, REPLICATION
from tests.integration.cluster import ADMIN as CLUSTER_ADMIN
from tests.integration.cluster import throwaway_cluster

LOG_TABLES = {SCHEMA: {TABLE: {"replication-method": LOG_BASED}}}


def log_based_bench(env: dict[str, str], work: Path, rows: int, say: Callable[[str], None]) -> dict[str, Any]:
    """LOG_BASED's and FULL_TABLE's measured days on the cluster (module docstring), for ``bench.changes``' result."""
    say(f"changes: the same {rows} rows on a throwaway wal_level=logical cluster, LOG_BASED and FULL_TABLE ...")
    logs = work / "logs"
    data_dir = work / "changes-data-logical"
    analytics_env = {**env, f"{ANALYTICS}_DATABASE": f"{env[f'{ANALYTICS}_DATABASE']}_log"}
    ensure_database(ANALYTICS, analytics_env)
    grant_analytics_owner(analytics_env)
    try:
        with throwaway_cluster({"wal_level": "logical"}) as cluster:
            source_env = {
                **analytics_env,
                f"{SOURCE}_HOST": "127.0.0.1",
                f"{SOURCE}_PORT": str(cluster.port),
                f"{SOURCE}_DATABASE": "bench_source",
                f"{REPLICATION}_USER": "bench_replication",
                f"{REPLICATION}_PASSWORD": "bench_replication",
            }
            cluster_admin = {**source_env, f"{ADMIN}_USER": CLUSTER_ADMIN, f"{ADMIN}_PASSWORD": ""}
            ensure_database(SOURCE, cluster_admin)
            grant_source_reader(cluster_admin)
            _create_source(cluster_admin, rows)
            base = base_env(source_env, work, data_dir)
            log_env = {**base, "DATA_DIR": str(data_dir / "log_based"), f"{SOURCE}_TABLES": json.dumps(LOG_TABLES)}
            provision_log_based({**log_env, **{k: cluster_admin[k] for k in (f"{ADMIN}_USER", f"{ADMIN}_PASSWORD")}})
            _day(log_env, FIRST, logs, LOG_BASED)
            _change_rows(cluster_admin, rows)
            log_based = _day(log_env, MEASURED, logs, LOG_BASED)
            full_env = {**base, "DATA_DIR": str(data_dir / "full"), f"{SOURCE}_TABLES": ""}
            full = _day(full_env, FULL, logs, "FULL-logical")
    finally:
        drop_database(ANALYTICS, analytics_env)
    result = {
        "log_based": {**log_based, "rows_read": _rows(data_dir / "log_based", MEASURED)},
        "log_full_table": {**full, "rows_read": _rows(data_dir / "full", FULL)},
    }
    total = {mode: result[mode]["step1_seconds"] + result[mode]["step2_seconds"] for mode in result}
    result["log_based_share_of_full_table"] = round(total["log_based"] / total["log_full_table"], 4)
    return result
