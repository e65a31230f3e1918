"""In a container that runs jobs (tests/compose/test.sh): all a job could find, tried as an attacker would.

A job runs as ``app`` in the scheduler's container (LocalExecutor) or a worker's
(Celery), so it can read the environment of every process there that runs as ``app``
(``/proc/*/environ``). Run there as ``app``, this does the same: it collects every
PostgreSQL credential it finds (SQLAlchemy URLs, and each ``*_USER`` with its
``*_PASSWORD``, ``*_HOST``, ``*_PORT``, ``*_DATABASE``) and tries each: a superuser,
a role that creates roles or databases, a shell through ``COPY ... TO PROGRAM``, a
login to Airflow's metadata database by any other role. It also checks that the
administrator's password (given as its sha256) is in no environment and that the
administrator's well-known default password is refused by every server.

Usage: python - ADMIN_PASSWORD_SHA256 SERVER... < check_credentials.py
Prints one line per credential; exits 1 on any finding.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import psycopg

URL = re.compile(r"^(?:db\+)?postgres(?:ql)?(?:\+\w+)?://")
AIRFLOW_SETTING = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
WELL_KNOWN = ("postgres", "postgres")


def environments() -> list[dict[str, str]]:
    """The environment of every process this user may read."""
    found = []
    for path in Path("/proc").glob("[0-9]*/environ"):
        try:
            items = path.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # another user's process, or one that ended
            continue
        found.append(dict(item.split("=", 1) for item in items if "=" in item))
    return found


def credentials(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each PostgreSQL login in ``env``, by the setting that holds it: libpq parameters."""
    found = {}
    for key, value in env.items():
        if URL.match(value):
            params = psycopg.conninfo.conninfo_to_dict("postgresql://" + value.split("://", 1)[1])
            found[key] = {k: str(v) for k, v in params.items()}
        elif key.endswith("_USER") and f"{key[:-5]}_HOST" in env:
            prefix = key[:-5]
            found[key] = {
                "user": value,
                "password": env.get(f"{prefix}_PASSWORD", ""),
                "host": env[f"{prefix}_HOST"],
                "port": env.get(f"{prefix}_PORT", "5432"),
                "dbname": env.get(f"{prefix}_DATABASE", "postgres"),
            }
    return found


def connect(params: dict[str, str], **overrides: str) -> psycopg.Connection:
    return psycopg.connect(
        psycopg.conninfo.make_conninfo(**{**params, **overrides}), connect_timeout=10, autocommit=True
    )


def findings_for(setting: str, params: dict[str, str], airflow: dict[str, str] | None) -> list[str]:
    """What is wrong with one credential (nothing, we hope)."""
    problems = []
    with connect(params) as conn:
        powers = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        if any(powers):
            problems.append(f"{setting}: {params['user']} is a superuser or creates roles/databases: {powers}")
        conn.execute("SET default_transaction_read_only = off")
        try:
            conn.execute("COPY (SELECT 1) TO PROGRAM 'true'")
            problems.append(f"{setting}: {params['user']} ran a program on {params['host']} (COPY ... TO PROGRAM)")
        except psycopg.errors.InsufficientPrivilege:
            pass
    if airflow and params["user"] != airflow["user"] and params["host"] == airflow["host"]:
        try:
            connect(params, dbname=airflow["dbname"]).close()
            problems.append(f"{setting}: {params['user']} logs in to Airflow's metadata database {airflow['dbname']}")
        except psycopg.OperationalError:
            pass
    return problems


def main(admin_sha256: str, *servers: str) -> int:
    envs = environments()
    found: dict[str, dict[str, str]] = {}
    problems = []
    for env in envs:
        found.update(credentials(env))
        for key, value in env.items():
            if hashlib.sha256(value.encode()).hexdigest() == admin_sha256:
                problems.append(f"the administrator's password is in the environment, as {key}")
    airflow = found.get(AIRFLOW_SETTING)
    for setting, params in sorted(found.items()):
        problems += findings_for(setting, params, airflow)
        print(f"   {setting}: {params['user']} on {params['host']}/{params['dbname']}: no superuser, no program")
    for server in servers:
        try:
            connect({"host": server, "port": "5432", "dbname": "postgres"}, user=WELL_KNOWN[0], password=WELL_KNOWN[1])
            problems.append(f"{server}: the administrator's well-known password {WELL_KNOWN} logs in")
        except psycopg.OperationalError:
            pass
    for problem in problems:
        print(f"   FOUND: {problem}")
    if not found:
        print("   FOUND: no credential at all (the check cannot have looked at the right processes)")
        return 1
    if problems:
        return 1
    print(f"   {len(envs)} process environments, {len(found)} credentials: none a superuser; default admin refused")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
