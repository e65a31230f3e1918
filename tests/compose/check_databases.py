"""In the scheduler's container (tests/compose/test.sh): the day's rows, and the jobs' roles.

Usage: python - DAY < check_databases.py. Prints the rows of the result view for DAY,
as the analytics role; fails when an analytics object is not that role's, or when
the source's role can write the source.
"""

from __future__ import annotations

import os
import sys

import psycopg

from pipeline.core.connections import ANALYTICS, SOURCE, conninfo

OWNERS = """
SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = relnamespace
WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'
"""

day = sys.argv[1]
with psycopg.connect(conninfo(ANALYTICS)) as conn:
    owners = conn.execute(OWNERS).fetchall()
    assert owners == [(os.environ["TARGET_POSTGRES_USER"],)], owners
    rows = conn.execute("SELECT count(*) FROM pipeline.orders_with_details WHERE pipeline_date = %s", (day,)).fetchone()
with psycopg.connect(conninfo(SOURCE), autocommit=True) as conn:
    conn.execute("SET default_transaction_read_only = off")
    try:
        conn.execute("INSERT INTO region VALUES (99, %s)", ("nowhere",))
    except psycopg.errors.InsufficientPrivilege:
        pass
    else:
        sys.exit("the source role could write the source")
print(rows[0] if rows else 0)
