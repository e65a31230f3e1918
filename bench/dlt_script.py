"""Run by the dlt peer's own Python (``.bench/peers/dlt``), never imported by the bench: one dlt hop.

Its one argument is a JSON object (written by :mod:`bench.dlt_peer`); the databases'
URLs come from the environment (``BENCH_DLT_SOURCE_URL``, ``BENCH_DLT_TARGET_URL``),
never the command line, since they carry the password:

- ``{"hop": "extract", "tables", "folder", "work"}``: the tables to CSV
  files under ``folder`` with dlt's ``sql_database`` source on its pyarrow backend and
  the ``filesystem`` destination (dlt's fast path: Arrow tables, no Python row objects);
- ``{"hop": "load", "schema", "files": {table: [csv, ...]}, "keys":
  {table: [column, ...]}, "work"}``: the CSV files read by pyarrow in blocks into keyed
  tables of ``schema`` (dlt's Postgres destination, ``replace``, CSV loaded by COPY).

Prints the rows it moved, as JSON, on its last line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import dlt
import pyarrow as pa
import pyarrow.csv as pa_csv
from dlt.sources.sql_database import sql_database

BLOCK_BYTES = 16 << 20


def extract(args: dict) -> int:
    """The tables to CSV files; returns the rows dlt reports written."""
    pipeline = dlt.pipeline(
        pipeline_name="bench_extract",
        destination=dlt.destinations.filesystem(bucket_url=Path(args["folder"]).as_uri()),
        dataset_name="extract",
        pipelines_dir=args["work"],
    )
    source = sql_database(
        credentials=os.environ["BENCH_DLT_SOURCE_URL"], schema="public", table_names=args["tables"], backend="pyarrow"
    )
    pipeline.run(source, loader_file_format="csv")
    return sum(pipeline.last_trace.last_normalize_info.row_counts.get(table, 0) for table in args["tables"])


def _batches(paths: list[str]) -> Iterator[pa.RecordBatch]:
    for path in paths:
        reader = pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES))
        yield from reader


def load(args: dict) -> int:
    """The CSV files into keyed tables; returns the rows dlt reports loaded."""
    pipeline = dlt.pipeline(
        pipeline_name="bench_load",
        destination=dlt.destinations.postgres(credentials=os.environ["BENCH_DLT_TARGET_URL"], create_indexes=True),
        dataset_name=args["schema"],
        pipelines_dir=args["work"],
    )
    resources = [
        dlt.resource(
            _batches(paths), name=table, primary_key=args["keys"].get(table) or None, write_disposition="replace"
        )
        for table, paths in args["files"].items()
    ]
    pipeline.run(resources, loader_file_format="csv")
    return sum(pipeline.last_trace.last_normalize_info.row_counts.get(table, 0) for table in args["files"])


if __name__ == "__main__":
    os.environ["DATA_WRITER__DISABLE_COMPRESSION"] = "true"  # plain CSV files, as the other paths write
    os.environ["RUNTIME__LOG_LEVEL"] = "ERROR"
    arguments = json.loads(sys.argv[1])
    rows = {"extract": extract, "load": load}[arguments["hop"]](arguments)
    print(json.dumps({"rows": rows}))
