"""The result view (the orders joined with their details) and the tables it reads."""

from __future__ import annotations

import hashlib

import psycopg
from psycopg import sql

from pipeline.core.errors import first_line
from pipeline.warehouse.catalog import partition_key
from pipeline.warehouse.loads import PROJECT_SCHEMA, TRANSFORM_DIR

RESULT_VIEW = "orders_with_details"
RESULT_QUERY = TRANSFORM_DIR / f"{RESULT_VIEW}.sql"
# The tables the result view joins: (analytics schema, table).
RESULT_TABLES = (("postgres", "orders"), ("csv", "order_details"))


def release_result_view(conn: psycopg.Connection, schema: str, table: str) -> None:
    """Drop the result view before a column type of a table it reads changes; the publish creates it again.

    PostgreSQL refuses to change the type of a column a view uses.
    """
    if (schema, table) in RESULT_TABLES:
        conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(PROJECT_SCHEMA, RESULT_VIEW)))


def ensure_result_view(conn: psycopg.Connection) -> str | None:
    """Create (or, when the query changed, replace) the result view once both its tables exist.

    Returns why there is no view, if there is none: a source may have an ``orders``
    table without the columns the query joins; that fails no publish.
    """
    if missing := [f"{s}.{t}" for s, t in RESULT_TABLES if partition_key(conn, s, t) is None]:
        return f"no {PROJECT_SCHEMA}.{RESULT_VIEW} view yet: no table {', '.join(missing)}"
    query = RESULT_QUERY.read_text(encoding="utf-8")
    version = hashlib.sha256(query.encode()).hexdigest()
    view = sql.Identifier(PROJECT_SCHEMA, RESULT_VIEW)
    current = conn.execute(
        "SELECT obj_description(to_regclass(%s), 'pg_class')", (f"{PROJECT_SCHEMA}.{RESULT_VIEW}",)
    ).fetchone()
    if current and current[0] == version:
        return None
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE OR REPLACE VIEW {} AS {}").format(view, sql.SQL(query)))
            conn.execute(sql.SQL("COMMENT ON VIEW {} IS {}").format(view, sql.Literal(version)))
    except (psycopg.errors.UndefinedColumn, psycopg.errors.DatatypeMismatch) as exc:
        reason = first_line(exc)
        return f"no {PROJECT_SCHEMA}.{RESULT_VIEW} view: {RESULT_QUERY.name} does not fit the tables ({reason})"
    return None
