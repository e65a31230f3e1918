"""In a worker of the distributed profile (tests/compose/test.sh): the day in the bucket, and right.

Usage: python - DAY < check_bucket.py, with the worker's DATA_DIR (s3://...) and AWS_*
settings. Reads from the object store itself, inside the compose network: each step-1
job's receipt for DAY, every object it names (its sha256 and row count as the receipt
says, its folder's metadata files' sha256), and the exported result the result receipt
names (their sha256 as it says, the JSON's records as many as the CSV's rows). Prints
"RESULT_ROWS ORDER_DETAILS_ROWS" on success; exits 1 with the problems.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import sys

from upath import UPath

from pipeline.core import store
from pipeline.warehouse.results import RESULT_RECEIPT, day_results, result_files

STEP1_JOBS = ("postgres-to-lfs", "csv-to-lfs")
RESULT_FILES = ["orders_with_details.csv", "orders_with_details.json"]


def csv_rows(path: UPath) -> int:
    """Data rows of a CSV object (its header line not counted), read as a stream."""
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        return sum(1 for _ in csv.reader(text)) - 1


def main(day_text: str) -> int:
    day = dt.date.fromisoformat(day_text)
    root = store.data_root(os.environ["DATA_DIR"])
    assert store.is_object_store(root), f"DATA_DIR {os.environ['DATA_DIR']} is not in an object store"
    problems: list[str] = []
    order_details = None
    for job in STEP1_JOBS:
        receipt_path = root / "_runs" / job / f"{day_text}.json"
        if not receipt_path.exists():
            problems.append(f"no receipt {receipt_path}")
            continue
        receipt = json.loads(receipt_path.read_bytes())
        for folder, files in receipt["folders"].items():
            for name, sha256 in files.items():
                if store.sha256_of(root / folder / name) != sha256:
                    problems.append(f"{root / folder / name}: sha256 differs from {receipt_path}")
        for key, entry in sorted(receipt["tables"].items()):
            obj = root / entry["folder"] / entry["file"]
            if not obj.exists():
                problems.append(f"{obj}: named by {receipt_path}, missing")
                continue
            if store.sha256_of(obj) != entry["sha256"]:
                problems.append(f"{obj}: sha256 differs from {receipt_path}")
            rows = csv_rows(obj)
            if rows != entry["rows"]:
                problems.append(f"{obj}: {rows} rows, {receipt_path} says {entry['rows']}")
            if job == "csv-to-lfs" and key.endswith("order_details"):
                order_details = rows
        print(
            f"   {receipt_path}: {len(receipt['tables'])} tables, every object there and as the receipt says",
            file=sys.stderr,
        )
    result = result_files(root, day, RESULT_FILES)
    if result is None:
        problems.append(f"no exported result for {day} under {root}")
        result_rows = None
    else:
        receipt_path = day_results(root, day) / RESULT_RECEIPT
        listed = json.loads(receipt_path.read_bytes())["files"]
        for name, obj in result.items():
            if store.sha256_of(obj) != listed[name]["sha256"]:
                problems.append(f"{obj}: sha256 differs from {receipt_path}")
        result_rows = csv_rows(result["orders_with_details.csv"])
        records = json.loads(result["orders_with_details.json"].read_bytes())
        if len(records) != result_rows:
            problems.append(f"result JSON has {len(records)} records, its CSV {result_rows} rows")
        print(f"   result: {', '.join(str(p) for p in result.values())}", file=sys.stderr)
    if order_details is None:
        problems.append("csv-to-lfs's receipt names no order_details table")
    for problem in problems:
        print(f"   {problem}", file=sys.stderr)
    if problems:
        return 1
    print(result_rows, order_details)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
