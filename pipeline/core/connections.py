"""Connections to the two databases, configured only from the environment.

The variable names are the plugins' own (``TAP_POSTGRES_*`` for the source,
``TARGET_POSTGRES_*`` for the analytics database), so one ``.env`` configures the
Meltano plugins, the project's steps and the set-up alike. Their ``USER`` is the
job's own least-privileged role (see ``pipeline.setup.roles``). Creating, seeding and
dropping databases, and creating those roles, takes the administrator of the same
server instead: ``POSTGRES_ADMIN_USER`` / ``POSTGRES_ADMIN_PASSWORD`` (in ``.env.admin``,
not ``.env``, see ``pipeline.core.config``), used by the set-up and the tests' throwaway
databases only, never by a job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import psycopg

from pipeline.core.errors import PipelineError, connection_failure, first_line

SOURCE = "TAP_POSTGRES"
ANALYTICS = "TARGET_POSTGRES"
ADMIN = "POSTGRES_ADMIN"


# A job's sessions wait, idle, while another of its steps works (the lock sessions for
# the whole run): a server's idle_session_timeout must not end them, and with them the
# run's locks. A session that truly hangs ends with its process.
SESSION_OPTIONS = "-c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0"


def _settings(prefix: str, env: Mapping[str, str], admin: bool) -> dict[str, str]:
    """Host, port and database of ``prefix``; user and password of its job role, or of the administrator."""
    login = ADMIN if admin else prefix
    names = [f"{prefix}_HOST", f"{prefix}_PORT", f"{prefix}_DATABASE", f"{login}_USER"]
    missing = [name for name in names if not env.get(name)]
    if missing:
        example = ".env.admin" if admin and f"{ADMIN}_USER" in missing else ".env"
        raise PipelineError(
            f"{', '.join(missing)} not set: copy {example}.example to {example} (make setup does), "
            f"or add the missing settings from {example}.example to your {example}"
        )
    return {
        "host": env[f"{prefix}_HOST"],
        "port": env[f"{prefix}_PORT"],
        "dbname": env[f"{prefix}_DATABASE"],
        "user": env[f"{login}_USER"],
        "password": env.get(f"{login}_PASSWORD") or "",
    }


def conninfo(prefix: str, env: Mapping[str, str] = os.environ, database: str | None = None, admin: bool = False) -> str:
    """A libpq connection string from ``{prefix}_HOST/PORT/USER/PASSWORD/DATABASE``.

    ``admin``: the same server and database as ``POSTGRES_ADMIN_USER`` instead of the job's role.
    The client encoding is UTF8 whatever the database's: the server converts text to it,
    and psycopg returns ``str`` (from a SQL_ASCII database it would return ``bytes``).
    """
    settings = _settings(prefix, env, admin)
    return psycopg.conninfo.make_conninfo(
        host=settings["host"],
        port=settings["port"],
        user=settings["user"],
        password=settings["password"] or None,
        dbname=database or settings["dbname"],
        application_name="northwind-pipeline",
        client_encoding="UTF8",
        options=SESSION_OPTIONS,
    )


def connect(
    prefix: str,
    env: Mapping[str, str] = os.environ,
    database: str | None = None,
    autocommit: bool = False,
    admin: bool = False,
) -> psycopg.Connection:
    """Connect, turning an unreachable server or a refused login into a one-line error naming it.

    Unreachable is transient, refused (a wrong setting) permanent: see ``connection_failure``.
    """
    info = conninfo(prefix, env, database, admin)
    try:
        return psycopg.connect(info, connect_timeout=10, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        settings = _settings(prefix, env, admin)
        raise connection_failure(
            f"cannot connect to {prefix}_* database {database or settings['dbname']} at "
            f"{settings['host']}:{settings['port']} as {settings['user']}: {first_line(exc)}"
        ) from exc
