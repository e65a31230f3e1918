"""The jobs' database roles: each job connects with a role that can do only its work.

- The source role (``TAP_POSTGRES_USER``) reads the schemas the jobs extract
  (``TAP_POSTGRES_FILTER_SCHEMAS``, default ``["public"]``) and nothing else: CONNECT
  on the source database, USAGE on those schemas and SELECT on their tables, also on
  tables the administrator creates there later (default privileges), so a table
  added tomorrow is still extracted. Grants on other schemas (an older set-up's, or a
  schema taken out of the list) are revoked. It is read-only by default too
  (``default_transaction_read_only``), but that is only a second fence: a session may
  switch it off, the privileges hold.
- The analytics role (``TARGET_POSTGRES_USER``) may CONNECT to the analytics database
  and CREATE schemas in it; it owns the schemas it creates (the sources' schemas, the
  project's ``pipeline`` schema and the ``pipeline_*`` load schemas) and all in
  them, and has no privilege on anything else.

PUBLIC (every role of the server) loses CONNECT and TEMPORARY on both databases, so a
role of another application on the same server cannot even log in to them. Neither
role may be a superuser or create roles or databases. They are created and granted
by the administrator (``POSTGRES_ADMIN_*``, see ``pipeline.core.connections``): ``make
setup``, the compose ``setup`` service and the tests' throwaway databases. Creating a
role again only sets its password (so a changed ``.env`` takes effect on the next
set-up).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import psycopg
from psycopg import sql

from pipeline.core.connections import ADMIN, ANALYTICS, SOURCE, connect
from pipeline.core.errors import PipelineError
from pipeline.setup.databases import MAINTENANCE_DATABASE

# Role attributes no job role may have; a role that has one is refused, not altered
# (it is somebody else's role).
_POWERS = ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls")
# Serialises role creation across concurrent set-ups and test runs on one server
# (CREATE/ALTER ROLE of the same role at once fails with "tuple concurrently updated").
_ROLE_LOCK = 7_244_410_901


def _role_name(prefix: str, env: Mapping[str, str]) -> str:
    """The job's role of ``prefix``; refused when it is the administrator itself."""
    role = env.get(f"{prefix}_USER", "")
    admin = env.get(f"{ADMIN}_USER", "")
    if not role:
        raise PipelineError(f"{prefix}_USER not set: copy .env.example to .env (make setup does)")
    if role == admin:
        raise PipelineError(
            f"{prefix}_USER={role} is also {ADMIN}_USER: the jobs need a role of their own "
            f"(e.g. {prefix}_USER={'northwind_reader' if prefix == SOURCE else 'analytics_owner'}, see .env.example)"
        )
    return role


def ensure_login_role(
    conn: psycopg.Connection, role: str, password: str | None, setting: str, replication: bool = False
) -> None:
    """Create ``role`` (LOGIN, no other power) or set its password, on the administrator's ``conn``.

    A role that has a power (superuser, ...) is somebody else's: refused, naming ``setting``.
    ``replication``: the role has REPLICATION, its one power (the log-based reader's,
    ``pipeline.setup.replication``), which it may then already have.
    """
    powers = tuple(power for power in _POWERS if not (replication and power == "rolreplication"))
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ROLE_LOCK,))
        row = conn.execute(
            sql.SQL("SELECT {} FROM pg_roles WHERE rolname = %s").format(
                sql.SQL(", ").join(sql.Identifier(power) for power in powers)
            ),
            (role,),
        ).fetchone()
        if row is not None and any(row):
            held = ", ".join(power[3:] for power, has in zip(powers, row, strict=True) if has)
            raise PipelineError(
                f"{setting}: {role} is an existing role with {held}: it needs a role without them; "
                "name another role (set-up creates it)"
            )
        verb = "CREATE" if row is None else "ALTER"
        attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS " + (
            "REPLICATION" if replication else "NOREPLICATION"
        )
        conn.execute(
            sql.SQL(verb + " ROLE {} " + attributes + " PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )


def ensure_role(prefix: str, env: Mapping[str, str] = os.environ) -> str:
    """Create the job's role of ``prefix`` (LOGIN, no other power) or set its password; returns its name."""
    role = _role_name(prefix, env)
    with connect(prefix, env, database=MAINTENANCE_DATABASE, admin=True) as conn:
        ensure_login_role(conn, role, env.get(f"{prefix}_PASSWORD") or None, f"{prefix}_USER")
    return role


def revoke_public_connect(conn: psycopg.Connection, database: str) -> None:
    """No CONNECT or TEMPORARY on ``database`` for PUBLIC: only its owner and roles granted them may log in."""
    conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))


def selected_schemas(env: Mapping[str, str]) -> list[str]:
    """The source's schemas the jobs extract: ``TAP_POSTGRES_FILTER_SCHEMAS`` (a JSON list), default ``public``."""
    text = env.get(f"{SOURCE}_FILTER_SCHEMAS") or '["public"]'
    try:
        schemas = json.loads(text)
    except json.JSONDecodeError:
        schemas = None
    if not isinstance(schemas, list) or not schemas or not all(isinstance(s, str) and s for s in schemas):
        raise PipelineError(f'{SOURCE}_FILTER_SCHEMAS={text!r}: expected a JSON list of schema names, e.g. ["public"]')
    return schemas


def _schemas(conn: psycopg.Connection) -> list[str]:
    """The user schemas of the connected database (not pg_* or information_schema)."""
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1"
    )
    return [name for (name,) in rows]


def grant_source_reader(env: Mapping[str, str] = os.environ) -> str:
    """Give the source role read access to the selected schemas: what exists, and what the administrator adds."""
    role = ensure_role(SOURCE, env)
    selected = selected_schemas(env)
    admin = sql.Identifier(env[f"{ADMIN}_USER"])
    reader = sql.Identifier(role)
    with connect(SOURCE, env, admin=True) as conn, conn.transaction():
        database = conn.info.dbname
        existing = _schemas(conn)
        missing = [schema for schema in selected if schema not in existing]
        if missing:
            raise PipelineError(
                f"{SOURCE}_FILTER_SCHEMAS names {', '.join(missing)}, which the source database {database} has not: "
                "correct the list, or create the schema first"
            )
        revoke_public_connect(conn, database)
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), reader))
        # An older set-up granted every schema, and new ones by default: taken back first.
        for objects, privilege in (("SCHEMAS", "USAGE"), ("TABLES", "SELECT")):
            revoke = "ALTER DEFAULT PRIVILEGES FOR ROLE {} REVOKE " + privilege + " ON " + objects + " FROM {}"
            conn.execute(sql.SQL(revoke).format(admin, reader))
        for schema in existing:
            name = sql.Identifier(schema)
            if schema in selected:
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(name, reader))
                conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(name, reader))
                conn.execute(
                    sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(
                        admin, name, reader
                    )
                )
            else:
                conn.execute(sql.SQL("REVOKE USAGE ON SCHEMA {} FROM {}").format(name, reader))
                conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(name, reader))
                conn.execute(
                    sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} REVOKE SELECT ON TABLES FROM {}").format(
                        admin, name, reader
                    )
                )
        conn.execute(
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET default_transaction_read_only = on").format(
                reader, sql.Identifier(database)
            )
        )
    return role


def grant_analytics_owner(env: Mapping[str, str] = os.environ) -> str:
    """Let the analytics role create (and so own) its schemas in the analytics database, and nothing more."""
    role = ensure_role(ANALYTICS, env)
    with connect(ANALYTICS, env, admin=True) as conn, conn.transaction():
        revoke_public_connect(conn, conn.info.dbname)
        conn.execute(
            sql.SQL("GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(conn.info.dbname), sql.Identifier(role)
            )
        )
    return role


def grant_job_roles(env: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """Both roles, with their privileges on both databases (which must exist); returns their names."""
    same_server = all(env.get(f"{SOURCE}_{key}") == env.get(f"{ANALYTICS}_{key}") for key in ("HOST", "PORT"))
    if same_server and env.get(f"{SOURCE}_USER") == env.get(f"{ANALYTICS}_USER"):
        raise PipelineError(
            f"{SOURCE}_USER and {ANALYTICS}_USER are both {env.get(f'{SOURCE}_USER')} on one server: "
            "the source's reader must not own the analytics schemas; give each its own role in .env"
        )
    return grant_source_reader(env), grant_analytics_owner(env)
