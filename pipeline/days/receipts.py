"""Reading a published day as step 2 does: only what the receipts list, checked against them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline.core.commands import rerun_command
from pipeline.core.errors import PipelineError, TransientPipelineError
from pipeline.core.store import verify
from pipeline.days.folder import TableFile, tables_of
from pipeline.days.layout import MANIFEST_FILE, SCHEMA_FILE, receipt_path, staging_root


def _read_bytes(path: Path) -> bytes | None:
    """The file's bytes; None if there is none (or it went meanwhile)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _raced(data_dir: Path, job: str, day: dt.date, refusal: PipelineError, read: bytes | None) -> PipelineError:
    """``refusal`` of ``job``'s day as transient when a run of ``job`` raced the read, so that a retry passes.

    Step 1 replaces a day's receipt and folders one rename at a time while step 2 may
    be reading them: its staging tree exists from its loader's start to its publish's
    end (or to its rerun, if it was cut short), and a publish that ended meanwhile
    changed the receipt. Otherwise the refusal stands: the day is missing or damaged.
    """
    staging = staging_root(data_dir, job, day)
    if staging.is_dir():
        return TransientPipelineError(
            f"{refusal}; but {job} is writing the day now, or was cut short ({staging} exists): "
            "retry once it has published the day"
        )
    if _read_bytes(receipt_path(data_dir, job, day)) != read:
        return TransientPipelineError(f"{refusal}; but {job} published the day again meanwhile: retry")
    return refusal


def _receipt_tables(data_dir: Path, job: str, day: dt.date) -> list[TableFile]:
    """The tables one job's receipt lists for ``day``, each checked against its folder's metadata.

    A folder whose ``_schema.json`` or ``_manifest.json`` is not the one the receipt
    covers, or whose table's data checksum differs, is refused with the rerun command;
    transient when a run of the job raced the read (see ``_raced``).
    """
    read = _read_bytes(receipt_path(data_dir, job, day))
    try:
        return _checked_tables(data_dir, job, day, read)
    except PipelineError as exc:
        raced = _raced(data_dir, job, day, exc, read)
        if raced is exc:
            raise
        raise raced from exc


def _checked_tables(data_dir: Path, job: str, day: dt.date, read: bytes | None) -> list[TableFile]:
    """``_receipt_tables`` of the receipt's bytes ``read`` (None: there was none)."""
    receipt = receipt_path(data_dir, job, day)
    if read is None:
        raise PipelineError(
            f"refused: step 1 job {job} has not succeeded for {day} (no {receipt}); "
            f"run it first: {rerun_command(job, day)}"
        )
    try:
        content = json.loads(read)
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{receipt} is not valid JSON: {exc}") from exc
    if "folders" not in content:
        raise PipelineError(
            f"{receipt} was written by an older version of step 1 (no metadata checksums); "
            f"rerun: {rerun_command(job, day)}"
        )
    folders = {
        relative: _covered_folder(data_dir / relative, expected, receipt, job, day)
        for relative, expected in sorted(content["folders"].items())
    }
    tables = []
    for key, entry in sorted(content["tables"].items()):
        table = folders.get(entry["folder"], {}).get(key)
        if table is None or table.sha256 != entry["sha256"]:
            raise PipelineError(
                f"{data_dir / entry['folder']} no longer matches the receipt {receipt}; "
                f"rerun: {rerun_command(job, day)}"
            )
        tables.append(dataclasses.replace(table, replication=entry.get("replication")))
    return tables


def _covered_folder(
    folder: Path, expected: dict[str, str], receipt: Path, job: str, day: dt.date
) -> dict[str, TableFile]:
    """The tables of a published folder whose metadata files are exactly those the receipt covers.

    Each metadata file is read once: its bytes are hashed and parsed, so on object storage
    a folder costs two small GETs and no listing (a folder there is only a key prefix).
    """
    read: dict[str, Any] = {}
    for name in (SCHEMA_FILE, MANIFEST_FILE):
        try:
            data = folder.joinpath(name).read_bytes()
        except FileNotFoundError:
            data = None
        if data is None or hashlib.sha256(data).hexdigest() != expected.get(name):
            raise PipelineError(
                f"{folder}: its metadata no longer matches the receipt {receipt}; rerun: {rerun_command(job, day)}"
            )
        read[name] = json.loads(data)["tables"]
    return {table.key: table for table in tables_of(folder, read[SCHEMA_FILE], read[MANIFEST_FILE])}


def read_day(data_dir: Path, day: dt.date, jobs: list[str]) -> list[TableFile]:
    """Every table that ``jobs`` published for ``day``; refuses the day if one did not succeed.

    The refusal names the missing job and the command that produces it. Keys are
    unique per source, so two jobs may each have a table ``order_details`` when their
    sources differ (a Postgres table and the CSV file); one source from two jobs is refused.
    """
    verify(data_dir)  # a missing bucket or refused credentials in one line, not as a missing receipt
    tables: dict[tuple[str, str], TableFile] = {}
    for job in jobs:
        for table in _receipt_tables(data_dir, job, day):
            if (table.source, table.key) in tables:
                raise PipelineError(
                    f"table {table.key!r} of source {table.source} for {day} comes from two jobs; "
                    "a source's tables must come from one job"
                )
            tables[(table.source, table.key)] = table
    return list(tables.values())
