"""Least privilege, tried as an attacker would: each role can do its work and nothing more.

The databases are made by the administrator as ``make setup`` makes them: the jobs'
roles (pipeline.setup.roles) and the roles of Meltano's, Airflow's and the Celery results'
databases (pipeline.setup.service_databases, as docker-compose.yml has them). Each check
logs in as one of those roles and expects PostgreSQL itself to refuse: another
database, another schema, a shell through ``COPY ... TO PROGRAM``, the server's files,
new roles or databases.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pipeline.core.connections import ADMIN, ANALYTICS, SOURCE, conninfo
from pipeline.core.errors import PipelineError
from pipeline.setup.databases import MAINTENANCE_DATABASE
from pipeline.setup.roles import grant_job_roles, grant_source_reader
from pipeline.setup.service_databases import ensure_service_database
from tests.conftest import Pipeline

DAY = "2024-01-02"
FILTER_SCHEMAS = f"{SOURCE}_FILTER_SCHEMAS"
# The services' databases as docker-compose.yml sets them up, by their settings.
SERVICES = {
    "meltano": "MELTANO_DATABASE_URI",
    "airflow": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "celery": "AIRFLOW__CELERY__RESULT_BACKEND",
}
# What no role but the administrator may do, whatever database it is in.
POWERS = {
    "a shell on the server": "COPY (SELECT 1) TO PROGRAM 'true'",
    "writing the server's files": "COPY (SELECT 1) TO '/tmp/northwind-intruder'",
    "reading the server's files": "SELECT pg_read_file('PG_VERSION')",
    "a new role": "CREATE ROLE intruder",
    "a new database": "CREATE DATABASE intruder",
}


def refused(conn: psycopg.Connection, statement: str) -> None:
    """``statement`` fails with a privilege error, not with a read-only or other error."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_the_source_role_reads_and_cannot_write(pipeline: Pipeline) -> None:
    with pipeline.connect_as_job(SOURCE) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (830,)
        # Read-only by default too; switched off, the privileges still refuse.
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO region VALUES (99, 'nowhere')")
        conn.execute("SET default_transaction_read_only = off")
        refused(conn, "INSERT INTO region VALUES (99, 'nowhere')")
        refused(conn, "UPDATE orders SET freight = 0")
        refused(conn, "DELETE FROM us_states")
        refused(conn, "TRUNCATE shippers")
        refused(conn, "CREATE TABLE intruder (id integer)")
        refused(conn, "CREATE SCHEMA intruder")
        refused(conn, "DROP TABLE region")
        refused(conn, "ALTER TABLE region ADD COLUMN intruder text")
        refused(conn, "CREATE ROLE intruder")
        refused(conn, "CREATE DATABASE intruder")
    with pipeline.connect(SOURCE) as conn:
        assert conn.execute("SELECT count(*) FROM region WHERE region_id = 99").fetchone() == (0,)


def test_the_analytics_role_owns_what_the_jobs_create_and_nothing_else(pipeline: Pipeline) -> None:
    for job in ("postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics"):
        pipeline.run_ok(job, day=DAY)
    role = pipeline.env[f"{ANALYTICS}_USER"]
    with pipeline.connect(ANALYTICS) as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"
        ).fetchall()
        schema_owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(nspowner) FROM pg_namespace "
            "WHERE nspname !~ '^pg_' AND nspname NOT IN ('information_schema', 'public')"
        ).fetchall()
        # Somebody else's schema and table in the same database.
        conn.execute("CREATE SCHEMA finance")
        conn.execute("CREATE TABLE finance.ledger (id integer)")
        conn.execute("CREATE TABLE public.ledger (id integer)")
    assert owners == [(role,)]
    assert schema_owners in ([(role,)], [])

    with pipeline.connect_as_job(ANALYTICS) as conn:
        for table in ("finance.ledger", "public.ledger"):
            refused(conn, f"SELECT * FROM {table}")
            refused(conn, f"INSERT INTO {table} VALUES (1)")
            refused(conn, f"DROP TABLE {table}")
        refused(conn, "CREATE TABLE finance.intruder (id integer)")
        refused(conn, "DROP SCHEMA finance CASCADE")
        refused(conn, "CREATE ROLE intruder")
        refused(conn, "CREATE DATABASE intruder")


def test_set_up_refuses_the_administrator_as_a_jobs_role(pipeline: Pipeline) -> None:
    admin = pipeline.env["POSTGRES_ADMIN_USER"]
    with pytest.raises(PipelineError, match=f"TAP_POSTGRES_USER={admin} is also POSTGRES_ADMIN_USER"):
        grant_job_roles({**pipeline.env, f"{SOURCE}_USER": admin})
    with pytest.raises(PipelineError, match="the source's reader must not own the analytics schemas"):
        grant_job_roles({**pipeline.env, f"{ANALYTICS}_USER": pipeline.env[f"{SOURCE}_USER"]})


def test_the_source_role_reads_only_the_selected_schemas(pipeline: Pipeline) -> None:
    with pipeline.connect(SOURCE) as conn:
        for schema in ("sales", "hr"):
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("CREATE TABLE {} (id integer)").format(sql.Identifier(schema, "existing")))
    grant_source_reader({**pipeline.env, FILTER_SCHEMAS: '["public", "sales"]'})
    with pipeline.connect(SOURCE) as conn:  # tables and a schema the administrator adds afterwards
        conn.execute("CREATE TABLE sales.later (id integer)")
        conn.execute("CREATE TABLE hr.later (id integer)")
        conn.execute("CREATE SCHEMA audit")
        conn.execute("CREATE TABLE audit.log (id integer)")
    with pipeline.connect_as_job(SOURCE) as conn:
        for table in ("orders", "sales.existing", "sales.later"):
            conn.execute(f"SELECT * FROM {table}")
        for table in ("hr.existing", "hr.later", "audit.log"):
            refused(conn, f"SELECT * FROM {table}")
    # sales taken out of the list again: the next set-up takes its grants back.
    grant_source_reader(pipeline.env)
    with pipeline.connect_as_job(SOURCE) as conn:
        conn.execute("SELECT * FROM orders")
        for table in ("sales.existing", "sales.later"):
            refused(conn, f"SELECT * FROM {table}")


def test_a_bad_schema_list_is_refused_in_one_line_naming_the_setting(pipeline: Pipeline) -> None:
    with pytest.raises(PipelineError, match=f"{FILTER_SCHEMAS} names missing, which the source database"):
        grant_source_reader({**pipeline.env, FILTER_SCHEMAS: '["public", "missing"]'})
    with pytest.raises(PipelineError, match=f"{FILTER_SCHEMAS}='public': expected a JSON list"):
        grant_source_reader({**pipeline.env, FILTER_SCHEMAS: "public"})


def admin_connection(env: dict[str, str]) -> psycopg.Connection:
    """The administrator on the server's maintenance database: roles and databases of the tests."""
    return psycopg.connect(conninfo(ANALYTICS, env, database=MAINTENANCE_DATABASE, admin=True), autocommit=True)


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``[db+]postgresql+psycopg://``) as a libpq one (a libpq one unchanged)."""
    return url.removeprefix("db+").replace("postgresql+psycopg://", "postgresql://", 1)


def login(url: str, database: str | None = None) -> psycopg.Connection:
    """Log in with the role and password of ``url``, to its database or to ``database``."""
    params = psycopg.conninfo.conninfo_to_dict(libpq_url(url))
    if database:
        params["dbname"] = database
    return psycopg.connect(psycopg.conninfo.make_conninfo(**params), autocommit=True)


def database_of(url: str) -> str:
    """The database a URL names."""
    return str(psycopg.conninfo.conninfo_to_dict(libpq_url(url))["dbname"])


def attempt_login(url: str, database: str) -> str:
    """``logs in`` or ``refused`` (no CONNECT); any other failure fails the test."""
    try:
        with login(url, database):
            return "logs in"
    except psycopg.OperationalError as exc:
        if "permission denied for database" not in str(exc):
            raise
        return "refused"


def powers_of(url: str) -> dict[str, str | bool]:
    """What the role of ``url`` may do beyond its database: each of ``POWERS`` ``allowed`` or ``refused``."""
    with login(url) as conn:
        conn.execute("SET default_transaction_read_only = off")  # the source role's: only a second fence
        found: dict[str, str | bool] = {
            "superuser": conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        }
        for power, statement in POWERS.items():
            try:
                conn.execute(statement)
                found[power] = "allowed"
            except psycopg.errors.InsufficientPrivilege:
                found[power] = "refused"
    return found


@pytest.fixture(scope="module")
def service_urls(shared_pipeline: Pipeline) -> Iterator[dict[str, str]]:
    """Meltano's, Airflow's and the Celery results' databases made by the set-up, with fresh roles; their URLs.

    Each gets a table of its own, as the service creates it (Airflow's metadata: ``dag``).
    """
    env = shared_pipeline.env
    host, port = env[f"{ANALYTICS}_HOST"], env[f"{ANALYTICS}_PORT"]
    suffix = uuid.uuid4().hex[:10]
    names = {service: f"test_{service}_{suffix}" for service in SERVICES}
    urls = {
        service: f"postgresql+psycopg://{name}:{secrets.token_hex(8)}@{host}:{port}/{name}"
        for service, name in names.items()
    }
    urls["celery"] = f"db+{urls['celery']}"
    settings = {setting: urls[service] for service, setting in SERVICES.items()}
    try:
        for setting in SERVICES.values():
            assert ensure_service_database(setting, {**env, **settings}) is not None
        for service, url in urls.items():
            with login(url) as conn:
                conn.execute(sql.SQL("CREATE TABLE {} (id integer)").format(sql.Identifier(f"{service}_table")))
        yield urls
    finally:
        with admin_connection(env) as conn:
            for name in names.values():
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_each_role_logs_in_to_its_own_database_only_and_has_no_power(
    shared_pipeline: Pipeline, service_urls: dict[str, str]
) -> None:
    """The list: the databases each role may log in to (every other one refuses it), and no power anywhere."""
    env = shared_pipeline.env
    roles = {
        "source": conninfo(SOURCE, env),
        "analytics": conninfo(ANALYTICS, env),
        **service_urls,
    }
    databases = {role: database_of(url) for role, url in roles.items()}
    stranger = f"test_stranger_{uuid.uuid4().hex[:10]}"  # any other role of the server: what PUBLIC may do
    with admin_connection(env) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(stranger)))
    host, port = env[f"{ANALYTICS}_HOST"], env[f"{ANALYTICS}_PORT"]
    logins = {**roles, "stranger": f"postgresql://{stranger}@{host}:{port}/{MAINTENANCE_DATABASE}"}
    try:
        seen = {
            role: {name: attempt_login(url, database) for name, database in databases.items()}
            for role, url in logins.items()
        }
    finally:
        with admin_connection(env) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(stranger)))
    assert seen == {role: {name: "logs in" if name == role else "refused" for name in databases} for role in logins}
    no_power = {"superuser": False, **dict.fromkeys(POWERS, "refused")}
    assert {role: powers_of(url) for role, url in roles.items()} == dict.fromkeys(roles, no_power)


def test_airflows_metadata_is_airflows_alone(service_urls: dict[str, str]) -> None:
    """A job holds Meltano's URL (and, in a Celery worker, the results'): neither reads Airflow's metadata."""
    airflow = database_of(service_urls["airflow"])
    with login(service_urls["airflow"]) as conn:
        conn.execute("INSERT INTO airflow_table VALUES (1)")
    for service in ("meltano", "celery"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            login(service_urls[service], airflow)


def test_set_up_refuses_the_administrator_or_a_superuser_as_a_services_role(shared_pipeline: Pipeline) -> None:
    env = shared_pipeline.env
    host, port, admin = env[f"{ANALYTICS}_HOST"], env[f"{ANALYTICS}_PORT"], env[f"{ADMIN}_USER"]
    setting = "MELTANO_DATABASE_URI"
    as_admin = f"postgresql+psycopg://{admin}@{host}:{port}/meltano"
    with pytest.raises(PipelineError, match=f"{setting} logs in as {admin}, the administrator"):
        ensure_service_database(setting, {**env, setting: as_admin})
    powerful = f"test_super_{uuid.uuid4().hex[:10]}"
    with admin_connection(env) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} SUPERUSER").format(sql.Identifier(powerful)))
        try:
            url = f"postgresql+psycopg://{powerful}@{host}:{port}/{powerful}"
            with pytest.raises(PipelineError, match=f"{setting}: {powerful} is an existing role with super"):
                ensure_service_database(setting, {**env, setting: url})
        finally:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(powerful)))
    assert ensure_service_database(setting, {**env, setting: "sqlite:////var/lib/meltano/meltano.db"}) is None
