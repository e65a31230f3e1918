"""Writing published step-1 days by hand, as the step-1 jobs would, for step 2 to read.

Step 2's tests need days that Northwind cannot give (odd names, a table dropped, a
type changed, a count that lies). These helpers write them through the contract's own
functions (``write_folder_metadata``, ``publish_staged_day``), so what step 2 reads is
exactly what step 1 publishes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipeline.core.connections import ANALYTICS
from pipeline.core.files import dump_json, sha256_file, write_text_atomic
from pipeline.core.names import encode_name, table_folder
from pipeline.days.bookmarks import BOOKMARKS_FILE, Window
from pipeline.days.folder import TableFile, read_folder, write_folder_metadata
from pipeline.days.layout import data_file_name, staging_root
from pipeline.days.publish import publish_staged_day
from pipeline.setup.databases import drop_database, ensure_database
from pipeline.setup.roles import grant_analytics_owner
from tests.conftest import Pipeline, project_env, unfenced

# Built-in types as step 1 records them: (format_type text, oid, typmod).
TYPES = {
    "smallint": ("smallint", 21, -1),
    "integer": ("integer", 23, -1),
    "bigint": ("bigint", 20, -1),
    "text": ("text", 25, -1),
    "varchar(40)": ("character varying(40)", 1043, 44),
    "varchar(200)": ("character varying(200)", 1043, 204),
    "numeric(14,2)": ("numeric(14,2)", 1700, (14 << 16 | 2) + 4),
    "double precision": ("double precision", 701, -1),
    "numeric(12,2)": ("numeric(12,2)", 1700, (12 << 16 | 2) + 4),
    "real": ("real", 700, -1),
    "date": ("date", 1082, -1),
    "bytea": ("bytea", 17, -1),
    "int4[]": ("integer[]", 1007, -1),
    # A reg* type, as a step 1 that did not send it as text would record it.
    "regclass[]": ("regclass[]", 2210, -1),
    # An enum's oid, as a step 1 that did not map it to text would record it.
    "public.mood": ("public.mood", 16500, -1),
}
JOBS = ("postgres-to-lfs", "csv-to-lfs")


@dataclasses.dataclass
class Table:
    """A table of a hand-written day: its exact name, columns (name -> TYPES key), key and CSV body."""

    name: str
    columns: dict[str, str]
    body: str
    key: list[str] = dataclasses.field(default_factory=list)
    source: str = "postgres"
    source_schema: str | None = "public"
    rows: int | None = None  # the manifest's count; None: the body's

    def schema(self) -> dict:
        properties = {}
        for column, kind in self.columns.items():
            text, oid, typmod = TYPES[kind]
            properties[column] = {"x-sql-datatype": text, "x-sql-type-oid": oid, "x-sql-typmod": typmod}
        return {"type": "object", "properties": properties}


def csv_table(name: str, columns: dict[str, str], body: str, key: list[str] | None = None) -> Table:
    """A table of the CSV source."""
    return Table(name, columns, body, key or [], source="csv", source_schema=None)


def write_day(
    data_dir: Path, day: str, job: str, tables: list[Table], windows: dict[str, Window] | None = None
) -> None:
    """Stage ``tables`` for ``job`` and ``day`` as its loader would, then publish them with a receipt.

    ``windows``: the incremental tables' windows (by table key), as target-lfs stages them.
    """
    if windows:
        bookmarks = {key: window.receipt_entry() for key, window in windows.items()}
        write_text_atomic(staging_root(data_dir, job, as_date(day)) / BOOKMARKS_FILE, dump_json(bookmarks))
    for table in tables:
        if table.source == "csv":
            key, relative = encode_name(table.name), f"csv/{day}"
        else:
            key = table_folder(table.source_schema or "public", table.name)
            relative = f"postgres/{key}/{day}"
        folder = staging_root(data_dir, job, as_date(day)) / relative
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / data_file_name(key)
        path.write_text(table.body, encoding="utf-8")
        rows = table.body.count("\n") - 1 if table.rows is None else table.rows
        described = TableFile(
            key, table.source, table.source_schema, table.name, path, rows, sha256_file(path), table.schema(), table.key
        )
        existing = read_folder(folder) if (folder / "_SUCCESS").is_file() else []
        write_folder_metadata(folder, [*existing, described])
    publish_staged_day(data_dir, job, as_date(day), unfenced)


class Analytics(Pipeline):
    """A throwaway analytics database and data dir (no source database), and step 2 run on them."""

    def meltano(self, *blocks: str, day: str, **overrides: str) -> subprocess.CompletedProcess[str]:
        return self.run(*blocks, day=day, **overrides)

    def meltano_ok(self, *blocks: str, day: str) -> subprocess.CompletedProcess[str]:
        return self.run_ok(*blocks, day=day)

    def connect(self, prefix: str = ANALYTICS) -> psycopg.Connection:
        return super().connect(prefix)

    def results(self, day: str) -> Path:
        return self.data_dir / "results" / day

    def exported(self, day: str) -> list[dict]:
        return json.loads((self.results(day) / "orders_with_details.json").read_text())


@pytest.fixture
def analytics(tmp_path: Path) -> Iterator[Analytics]:
    """A fresh analytics database (dropped afterwards) and DATA_DIR."""
    env = {
        **project_env(),
        "TARGET_POSTGRES_DATABASE": f"test_analytics_{uuid.uuid4().hex[:10]}",
        "DATA_DIR": str(tmp_path / "data"),
    }
    ensure_database(ANALYTICS, env)
    grant_analytics_owner(env)
    try:
        yield Analytics(env=env, data_dir=tmp_path / "data")
    finally:
        drop_database(ANALYTICS, env)


def as_date(day: str) -> dt.date:
    return dt.date.fromisoformat(day)
