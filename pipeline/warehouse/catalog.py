"""What the analytics database's catalog says of a table: its key, its partitioning."""

from __future__ import annotations

import psycopg


def primary_key(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    """The primary key's columns of ``schema.table``, in key order (empty: it has none)."""
    rows = conn.execute(
        """
        SELECT a.attname
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary
        ORDER BY array_position(i.indkey, a.attnum)
        """,
        (schema, table),
    ).fetchall()
    return [name for (name,) in rows]


def partition_key(conn: psycopg.Connection, schema: str, table: str) -> str | None:
    """``LIST (pipeline_date)`` for a parent of ours, ``""`` for any other relation, None if there is none."""
    row = conn.execute(
        """
        SELECT CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) ELSE '' END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s
        """,
        (schema, table),
    ).fetchone()
    return row[0] if row else None
