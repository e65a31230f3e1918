"""Publishing a staged day into the typed analytics tables, on a real Postgres."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from pipeline.analytics import publish_day
from pipeline.databases import ANALYTICS, conninfo, drop_database, ensure_database
from pipeline.errors import PipelineError
from pipeline.roles import grant_analytics_owner
from pipeline.staging import staging_schema

DAY1, DAY2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)


@pytest.fixture
def conn(base_env: dict[str, str]) -> Iterator[psycopg.Connection]:
    env = {**base_env, "TARGET_POSTGRES_DATABASE": f"test_publish_{uuid.uuid4().hex[:10]}"}
    ensure_database(ANALYTICS, env)
    try:
        grant_analytics_owner(env)
        with psycopg.connect(conninfo(ANALYTICS, env), autocommit=True) as connection:
            yield connection
    finally:
        drop_database(ANALYTICS, env)


def stage(conn: psycopg.Connection, day: dt.date, ddl: str, rows: str) -> None:
    """Create the day's staging schema with one table, as target-analytics would."""
    schema = staging_schema(day)
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    conn.execute(f"CREATE TABLE {schema}.{ddl}")
    if rows:
        table = ddl.split(" ", 1)[0]
        conn.execute(f"INSERT INTO {schema}.{table} VALUES {rows}")


def rows(conn: psycopg.Connection, query: str) -> list[tuple]:
    return conn.execute(query).fetchall()


PRODUCTS = "products (product_id smallint PRIMARY KEY, name character varying(40), price real, picture bytea)"


def test_first_publish_creates_a_typed_table_keyed_by_day(conn: psycopg.Connection) -> None:
    stage(conn, DAY1, PRODUCTS, "(1, 'Chai', 18, '\\x0102'), (2, '', NULL, NULL)")

    assert publish_day(conn, DAY1) == {"products": 2}

    types = rows(
        conn,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'public.products'::regclass AND attnum > 0 ORDER BY attnum",
    )
    assert types == [
        ("pipeline_date", "date"),
        ("product_id", "smallint"),
        ("name", "character varying(40)"),
        ("price", "real"),
        ("picture", "bytea"),
    ]
    key = rows(conn, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public.products'::regclass")
    assert key == [("PRIMARY KEY (pipeline_date, product_id)",)]
    assert rows(conn, "SELECT * FROM products ORDER BY product_id") == [
        (DAY1, 1, "Chai", 18.0, b"\x01\x02"),
        (DAY1, 2, "", None, None),
    ]
    assert rows(conn, "SELECT 1 FROM pg_namespace WHERE nspname = 'staging_20240101'") == []


def test_republishing_a_day_replaces_only_that_day(conn: psycopg.Connection) -> None:
    stage(conn, DAY1, PRODUCTS, "(1, 'Chai', 18, NULL)")
    publish_day(conn, DAY1)
    stage(conn, DAY2, PRODUCTS, "(1, 'Chai', 19, NULL), (2, 'Chang', 19, NULL)")
    publish_day(conn, DAY2)
    stage(conn, DAY1, PRODUCTS, "(3, 'Aniseed Syrup', 10, NULL)")
    publish_day(conn, DAY1)

    assert rows(conn, "SELECT pipeline_date, product_id, price FROM products ORDER BY 1, 2") == [
        (DAY1, 3, 10.0),
        (DAY2, 1, 19.0),
        (DAY2, 2, 19.0),
    ]


def test_a_table_the_day_no_longer_has_loses_that_day_only(conn: psycopg.Connection) -> None:
    stage(conn, DAY1, PRODUCTS, "(1, 'Chai', 18, NULL)")
    stage(conn, DAY1, "region (region_id smallint PRIMARY KEY)", "(1)")
    publish_day(conn, DAY1)
    stage(conn, DAY2, "region (region_id smallint PRIMARY KEY)", "(1)")
    stage(conn, DAY2, PRODUCTS, "(1, 'Chai', 18, NULL)")
    publish_day(conn, DAY2)
    stage(conn, DAY2, PRODUCTS, "(1, 'Chai', 18, NULL)")
    publish_day(conn, DAY2)

    assert rows(conn, "SELECT pipeline_date FROM region ORDER BY 1") == [(DAY1,)]


def test_a_new_source_column_is_added(conn: psycopg.Connection) -> None:
    stage(conn, DAY1, "region (region_id smallint PRIMARY KEY)", "(1)")
    publish_day(conn, DAY1)
    stage(conn, DAY2, "region (region_id smallint PRIMARY KEY, name text)", "(1, 'East')")
    publish_day(conn, DAY2)

    assert rows(conn, "SELECT pipeline_date, region_id, name FROM region ORDER BY 1") == [
        (DAY1, 1, None),
        (DAY2, 1, "East"),
    ]


def test_a_changed_column_type_is_refused_and_nothing_changes(conn: psycopg.Connection) -> None:
    stage(conn, DAY1, "region (region_id smallint PRIMARY KEY)", "(1)")
    publish_day(conn, DAY1)
    stage(conn, DAY2, "region (region_id bigint PRIMARY KEY)", "(2)")

    with pytest.raises(PipelineError, match="table region, column region_id: the source now has type bigint"):
        publish_day(conn, DAY2)
    assert rows(conn, "SELECT pipeline_date, region_id FROM region") == [(DAY1, 1)]
    assert rows(conn, "SELECT count(*) FROM staging_20240102.region") == [(1,)]


def test_a_table_without_key_is_indexed_by_day(conn: psycopg.Connection) -> None:
    stage(conn, DAY1, "notes (body text)", "('a'), ('a')")
    publish_day(conn, DAY1)
    stage(conn, DAY1, "notes (body text)", "('b')")
    publish_day(conn, DAY1)
    assert rows(conn, "SELECT body FROM notes") == [("b",)]


def test_nothing_staged_is_an_error(conn: psycopg.Connection) -> None:
    with pytest.raises(PipelineError, match="no staging schema staging_20240101"):
        publish_day(conn, DAY1)
