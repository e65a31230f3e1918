"""What the peers' runners share: the administrator's URL of a database, the tables' keys, one hop's figures."""

from __future__ import annotations

import urllib.parse
from typing import Any

import psycopg
from psycopg import sql

from bench.memory import Timing
from pipeline.core.connections import ADMIN, ANALYTICS, SOURCE, conninfo

# The CSV source's key (extract/order_details.schema.json's key_properties).
CSV_KEYS = {"order_details": ["order_id", "product_id"]}


def admin_url(prefix: str, env: dict[str, str], scheme: str = "postgresql") -> str:
    """A Postgres URL for a peer, as the administrator (values quoted, never formatted raw)."""
    user, password = (urllib.parse.quote(env.get(f"{ADMIN}_{key}") or "", safe="") for key in ("USER", "PASSWORD"))
    host, port, name = (env[f"{prefix}_{key}"] for key in ("HOST", "PORT", "DATABASE"))
    return f"{scheme}://{user}:{password}@{host}:{port}/{urllib.parse.quote(name, safe='')}?sslmode=disable"


def table_keys(env: dict[str, str], tables: list[str]) -> dict[str, list[str]]:
    """Each source table's primary key columns, in key order (empty when it has none)."""
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) ON true "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
            "WHERE i.indisprimary AND n.nspname = 'public' AND c.relname = ANY(%s) ORDER BY c.relname, k.position",
            (tables,),
        ).fetchall()
    keys: dict[str, list[str]] = {table: [] for table in tables}
    for table, column in rows:
        keys[table].append(column)
    return keys


def loaded_rows(env: dict[str, str], schema: str, tables: list[str]) -> int:
    """Rows a peer loaded into ``schema``'s ``tables`` (its own bookkeeping tables are not counted)."""
    with psycopg.connect(conninfo(ANALYTICS, env, admin=True), autocommit=True) as conn:
        return sum(
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))).fetchone()[0]
            for table in tables
        )


def hop(peer: str, hop_name: str, rows: int, timing: Timing) -> dict[str, Any]:
    """One peer's figures for one hop, as latest.json lists them."""
    return {
        "peer": peer,
        "hop": hop_name,
        "rows": rows,
        "seconds": round(timing.seconds, 2),
        "rows_per_s": round(rows / timing.seconds),
        "peak_rss_mb": timing.peak_rss_mb,
        "largest_process": timing.largest,
    }
