"""What the analytics loader (target-analytics) and the publish step share: names and bookkeeping.

Layout of the analytics database (see the README's "Analytics layout"):

- a source's tables keep their exact names in the schema ``pipeline.names.analytics_schema``
  gives them (``postgres``, ``postgres__S``, ``csv``); each is partitioned by the day column,
  one partition per day;
- the project's own objects live in schema ``pipeline``: the result view and the bookkeeping
  table ``pipeline.loaded_tables`` (rows per day and table, from the manifest and as loaded);
- a day is loaded into fresh tables, again with their exact names, in schemas of their own
  whose names start with ``pipeline_`` (one per load and analytics schema, e.g.
  ``pipeline_20240102_5f1c9a3e_0``). Publishing attaches those tables as the day's partitions,
  so they stay where they were loaded: partition names never derive from a table's name,
  which may already be 63 bytes long.

No source name can produce ``pipeline`` or a ``pipeline_...`` schema (``analytics_schema``
only yields ``postgres``, ``postgres__...`` and ``csv``), so the two never clash.
"""

from __future__ import annotations

import datetime as dt
import secrets

import psycopg
from psycopg import sql

PROJECT_SCHEMA = "pipeline"
LOAD_SCHEMA_PREFIX = "pipeline_"
DAY_COLUMN = "pipeline_date"
LOADED_TABLES = "loaded_tables"
# The first oid of objects a database creates itself (FirstNormalObjectId): any type at
# or above it (an enum, a domain, an extension's type) exists only in some databases.
FIRST_USER_OID = 16384
# Creating the project schema and its table at once from two loads would race.
_BOOTSTRAP_LOCK = 7_261_845_300

_LOADED_TABLES_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    pipeline_date date NOT NULL,
    load_id text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    load_schema text NOT NULL,
    source text NOT NULL,
    source_schema text,
    file_key text NOT NULL,
    file_sha256 text NOT NULL,
    manifest_rows bigint NOT NULL,
    loaded_rows bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    PRIMARY KEY (load_id, schema_name, table_name)
)
"""


def loaded_tables() -> sql.Composed:
    """The bookkeeping table: one row per loaded table and day (see ``_LOADED_TABLES_DDL``)."""
    return sql.SQL("{}.{}").format(sql.Identifier(PROJECT_SCHEMA), sql.Identifier(LOADED_TABLES))


def ensure_project_schema(conn: psycopg.Connection) -> None:
    """Create schema ``pipeline`` and its bookkeeping table if missing (in the caller's transaction)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_BOOTSTRAP_LOCK,))
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(PROJECT_SCHEMA)))
    conn.execute(sql.SQL(_LOADED_TABLES_DDL).format(table=loaded_tables()))


def new_load_id() -> str:
    """A fresh id for one load of a day: the loads of one day never share a schema."""
    return secrets.token_hex(4)


def load_schema(day: dt.date, load_id: str, ordinal: int) -> str:
    """The schema of load ``load_id``'s tables of its ``ordinal``-th analytics schema.

    E.g. ``pipeline_20240102_5f1c9a3e_0``: at most 37 bytes whatever the source's names.
    """
    return f"{LOAD_SCHEMA_PREFIX}{day:%Y%m%d}_{load_id}_{ordinal}"
