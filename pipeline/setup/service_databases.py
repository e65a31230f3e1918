"""The databases of the services around the jobs, each owned by a role of its own.

Meltano's system database (``MELTANO_DATABASE_URI``), Airflow's metadata
(``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``) and the Celery results
(``AIRFLOW__CELERY__RESULT_BACKEND``) may live in PostgreSQL (docker-compose.yml puts
all three on its ``airflow-db`` server). Each is named by a SQLAlchemy URL whose user
is that service's own role. The set-up, as the administrator of the URL's server
(``POSTGRES_ADMIN_*``), creates that role (LOGIN and nothing more, with the URL's
password), creates the database owned by it (so the service creates and migrates its
own tables) and takes CONNECT from PUBLIC, so no other role, a job's included, can log
in to it. The URL's user used to be the superuser of that server: every process that
held the URL, each job included, could read every database there and run a shell by
``COPY ... TO PROGRAM``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import psycopg
from psycopg import sql

from pipeline.core.connections import ADMIN
from pipeline.core.errors import PipelineError, first_line
from pipeline.setup.databases import MAINTENANCE_DATABASE
from pipeline.setup.roles import ensure_login_role, revoke_public_connect

# The settings that may name such a database, in the order set-up creates them.
SERVICE_DATABASE_SETTINGS = (
    "MELTANO_DATABASE_URI",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__RESULT_BACKEND",
)


def postgres_url_params(setting: str, url: str) -> dict[str, str] | None:
    """The libpq parameters of a PostgreSQL SQLAlchemy URL (``[db+]postgresql[+driver]://``); None for another kind."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.removeprefix("db+").split("+", 1)[0] not in ("postgresql", "postgres"):
        return None
    params = psycopg.conninfo.conninfo_to_dict(f"postgresql://{rest}")
    if not params.get("dbname") or not params.get("user"):
        raise PipelineError(f"{setting}: the URL ...@{rest.split('@')[-1]} names no user or no database")
    return {key: str(value) for key, value in params.items()}


def ensure_service_database(setting: str, env: Mapping[str, str] = os.environ) -> str | None:
    """The database of the URL in ``setting``, owned by the URL's user (both created if missing); None if not Postgres.

    Returns one line saying what it did. Refused: the administrator as the URL's user,
    an existing role with powers, an existing database owned by another role.
    """
    params = postgres_url_params(setting, env.get(setting, ""))
    if params is None:
        return None
    role, database = params["user"], params["dbname"]
    admin = env.get(f"{ADMIN}_USER", "")
    if role == admin:
        raise PipelineError(
            f"{setting} logs in as {role}, the administrator ({ADMIN}_USER): give it a role of its own "
            "(set-up creates it and its database)"
        )
    server = {**params, "user": admin, "password": env.get(f"{ADMIN}_PASSWORD") or "", "dbname": MAINTENANCE_DATABASE}
    try:
        with psycopg.connect(psycopg.conninfo.make_conninfo(**server), connect_timeout=10, autocommit=True) as conn:
            ensure_login_role(conn, role, params.get("password") or None, setting)
            owner = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if owner is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(role))
                )
            elif owner[0] != role:
                raise PipelineError(
                    f"{setting}: database {database} exists and is owned by {owner[0]}, not by {role}: "
                    f"ALTER DATABASE {database} OWNER TO {role} (and REASSIGN OWNED in it), or drop it"
                )
            revoke_public_connect(conn, database)
    except psycopg.OperationalError as exc:
        message = f"{setting}: cannot reach {params.get('host')} as {ADMIN}_USER {admin}: {first_line(exc)}"
        raise PipelineError(message) from exc
    verb = "created" if owner is None else "exists"
    return f"{setting}: database {database} on {params.get('host')} {verb}, owned by {role} alone"
