"""Everything the jobs need of the two database servers, as the administrator: one call.

Used by ``make setup`` (scripts/setup_sources.py), the compose ``setup`` service (the
same script), the tests' throwaway databases and the benchmark, so that all of them
build the databases and the jobs' roles the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pipeline.core.connections import ANALYTICS, SOURCE
from pipeline.setup.databases import ensure_database, seed_if_empty
from pipeline.setup.replication import provision_log_based
from pipeline.setup.roles import grant_job_roles


def provision(dump: Path | None, env: Mapping[str, str] = os.environ) -> list[str]:
    """Create the databases if missing, seed the source from ``dump`` if empty, grant the roles; returns what it did."""
    done = []
    for prefix in (SOURCE, ANALYTICS):
        created = ensure_database(prefix, env)
        done.append(f"database {env[f'{prefix}_DATABASE']}: {'created' if created else 'exists'}")
    if dump is not None and seed_if_empty(SOURCE, dump, env):
        done.append(f"source database seeded from {dump}")
    reader, owner = grant_job_roles(env)
    done.append(f"roles: {reader} reads the source, {owner} owns its schemas in the analytics database")
    done.extend(provision_log_based(env))
    return done
