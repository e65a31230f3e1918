"""The bench's source databases: Northwind as ``make setup`` seeds it, then scaled N times.

``orders`` is replicated N times with new ids (``order_id + k * 10000``, so
``order_id`` is widened to integer); the CSV ``order_details`` is replicated N times
with the same new ids (N=1000: 2,155,000 rows), written as the CSV source and also
loaded into the source database as ``bench_order_details`` (a Postgres table of the
same size; its own name, since step 2 refuses two jobs publishing one table). This is
the administrator's work (``POSTGRES_ADMIN_*``), as ``make setup``'s.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import psycopg
from psycopg import sql

from bench.memory import PROJECT_ROOT
from pipeline.core.connections import ANALYTICS, SOURCE, conninfo
from pipeline.core.files import write_text_atomic
from pipeline.setup.databases import drop_database
from pipeline.setup.provision import provision

ID_STRIDE = 10_000  # Northwind's order ids are 10248..11077: copy k gets order_id + k * 10000
DETAILS_SCHEMA = PROJECT_ROOT / "extract" / "order_details.schema.json"
BIG_TABLE = "bench_order_details"


def fresh_databases(env: dict[str, str], dump: Path) -> None:
    """Drop and create both databases as ``make setup`` does: seeded with Northwind, the jobs' roles granted."""
    for prefix in (SOURCE, ANALYTICS):
        drop_database(prefix, env)
    provision(dump, env)


def write_scaled_csv(original: Path, scaled: Path, scale: int) -> int:
    """The CSV source replicated ``scale`` times with new order ids; returns its data rows."""
    with original.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [row for row in reader]
    column = header.index("order_id")
    with scaled.open("w", newline="") as out:
        out.write(",".join(header) + "\n")
        for k in range(scale):
            offset = k * ID_STRIDE
            lines = []
            for row in rows:
                row = list(row)
                row[column] = str(int(row[column]) + offset)
                lines.append(",".join(row) + "\n")
            out.write("".join(lines))
    return len(rows) * scale


def scale_source(env: dict[str, str], scaled_csv: Path, scale: int) -> None:
    """Replicate orders ``scale`` times and load the scaled CSV as ``bench_order_details``."""
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        conn.execute("ALTER TABLE orders ALTER COLUMN order_id TYPE integer")
        conn.execute(
            "INSERT INTO orders SELECT o.order_id + k * %s, o.customer_id, o.employee_id, o.order_date, "
            "o.required_date, o.shipped_date, o.ship_via, o.freight, o.ship_name, o.ship_address, o.ship_city, "
            "o.ship_region, o.ship_postal_code, o.ship_country FROM orders o, generate_series(1, %s) k",
            (ID_STRIDE, scale - 1),
        )
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (order_id integer NOT NULL, product_id smallint NOT NULL, unit_price real NOT NULL, "
                "quantity smallint NOT NULL, discount real NOT NULL, PRIMARY KEY (order_id, product_id))"
            ).format(sql.Identifier(BIG_TABLE))
        )
        with conn.cursor() as cur, scaled_csv.open("rb") as source:
            statement = sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)").format(sql.Identifier(BIG_TABLE))
            with cur.copy(statement) as copy:
                while block := source.read(1 << 20):
                    copy.write(block)
        conn.execute("VACUUM ANALYZE")


def scaled_csv_env(work: Path, scaled_csv: Path) -> dict[str, str]:
    """The environment that points the CSV job at the scaled file, whose ids need a wider ``order_id``."""
    schema = json.loads(DETAILS_SCHEMA.read_text())
    schema["properties"]["order_id"]["x-sql-datatype"] = "integer"
    write_text_atomic(work / "order_details.schema.json", json.dumps(schema, indent=2))
    files = [
        {
            "stream": "order_details",
            "path": str(scaled_csv),
            "schema": str(work / "order_details.schema.json"),
            "key_properties": ["order_id", "product_id"],
        }
    ]
    return {"ORDER_DETAILS_CSV": str(scaled_csv), "TAP_ORDER_DETAILS_FILES": json.dumps(files)}


def source_rows(env: dict[str, str], tables: list[str]) -> int:
    """Rows of the source's ``tables``, all together."""
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        return sum(
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", table))).fetchone()[0]
            for table in tables
        )


def line_count(path: Path) -> int:
    """Line breaks in a file, read in blocks."""
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def csv_rows(path: Path) -> int:
    """Data rows of a CSV file with a header and no line break inside a field (the CSV source's form)."""
    return line_count(path) - 1


def source_tables(env: dict[str, str]) -> list[str]:
    """The source's base tables, as postgres-to-lfs discovers them."""
    with psycopg.connect(conninfo(SOURCE, env, admin=True), autocommit=True) as conn:
        return [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            ).fetchall()
        ]
