"""The day-folder contract between step 1 and step 2, on the local file system ("lfs").

"lfs" in this project's names (this module, ``postgres-to-lfs``, tap-lfs,
target-lfs, ``lfs://`` assets) means the local file system: the dated files under
``DATA_DIR`` that step 1 writes and step 2 reads, not Git LFS.

Layout under ``DATA_DIR`` (``{date}`` is the run's ``PIPELINE_DATE``)::

    postgres/{key}/{date}/{key}.csv            one folder per table and day
    csv/{date}/{key}.csv                       one folder per day
        each day folder also holds
        _schema.json     per table key: source, source schema, exact table name,
                         key properties and the columns' JSON schemas
        _manifest.json   per table key: file name, row count, byte size, sha256
        _SUCCESS         written last: the folder is complete
    _runs/{job}/{date}.json                    the job's receipt for the day: each
                                               table's folder and sha256 (and an
                                               incremental table's window, its
                                               ``replication``: pipeline.bookmarks), each
                                               folder's metadata files' sha256, and
                                               the source's tables left out (left_out)
    .staging/{job}/{date}/...                  where a running job writes
    _history/{job}/{date}/{version}/...        the versions a rerun replaced (pipeline.history)

A table's ``key`` is its folder name, ``pipeline.names.table_folder`` of its source
schema and name (``orders``, ``%4frders``, ``sales.orders``): a name is data, and only
its encoded form ever becomes part of a path. Days are ``datetime.date`` everywhere
here; only a path or a message turns one into text.

Why a receipt on top of the folders' own markers: a job writes many folders, and
only the receipt says that *all* of them are from one run that succeeded. A job's
writer (the loader) fills its staging tree; a separate publish step, which Meltano
runs only when the extract and the load both exited 0, moves each folder into
place and then writes the receipt. Step 2 reads exactly the tables a receipt lists,
so a crash at any point leaves either the previous complete day or no receipt (and
step 2 refuses the day), never a half-written day that step 2 would read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shlex
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.crashpoints import pause_point
from pipeline.errors import PipelineError, TransientPipelineError
from pipeline.files import dump_json, read_json, sha256_file, write_text_atomic
from pipeline.names import within_bytes
from pipeline.store import data_root, is_object_store, verify

SCHEMA_FILE = "_schema.json"
MANIFEST_FILE = "_manifest.json"
SUCCESS_FILE = "_SUCCESS"
RUNS_DIR = "_runs"
STAGING_DIR = ".staging"
TRASH_DIR = ".trash"
# Top-level keys of a stream's SCHEMA message by which tap-postgres-native names the
# table exactly: its stream name ``<schema>-<table>`` cannot be split back.
SOURCE_SCHEMA_KEY = "x-source-schema"
SOURCE_TABLE_KEY = "x-source-table"
# Top-level key of a stream's SCHEMA message by which tap-lfs hands target-analytics a
# table's identity: source, source schema, exact table name, file key, sha256 and rows.
TABLE_IDENTITY_KEY = "x-pipeline-table"
# The message by which tap-postgres-native names the tables it does not extract; target-lfs
# stages them in LEFT_OUT_FILE of the day's staging tree, the publish copies them into the receipt.
LEFT_OUT_MESSAGE = "LEFT_OUT"
LEFT_OUT_FILE = "_left_out.json"
# NAME_MAX of Linux file systems: a longer file or folder name cannot be created.
MAX_FILE_NAME_BYTES = 255


def resolve_data_dir(value: str) -> Path:
    """The data root ``DATA_DIR`` names: a local folder (relative: to the Meltano project root) or an S3 prefix.

    Meltano starts plugins in the caller's working directory, which is not always the
    project root (a user in a subfolder, an orchestrator); Meltano sets
    ``MELTANO_PROJECT_ROOT`` for every plugin it runs. See ``pipeline.store``.
    """
    return data_root(value)


def rerun_command(job: str, day: dt.date) -> str:
    """The exact command that (re)runs ``job`` for ``day`` from the project root."""
    return f"PIPELINE_DATE={day.isoformat()} .venv/bin/meltano run {job}"


def migrate_command(day: dt.date, schema: str, table: str) -> str:
    """The exact command that migrates analytics table ``schema.table`` to the types of ``day``'s load."""
    return (
        f".venv/bin/meltano invoke pipeline migrate --date {day.isoformat()} "
        f"--schema {shlex.quote(schema)} --table {shlex.quote(table)}"
    )


def staging_root(data_dir: Path, job: str, day: dt.date) -> Path:
    """Where ``job`` writes its day before the publish step moves it into place."""
    return data_dir / STAGING_DIR / job / day.isoformat()


def receipt_path(data_dir: Path, job: str, day: dt.date) -> Path:
    """The receipt that says ``job`` succeeded for ``day``."""
    return data_dir / RUNS_DIR / job / f"{day.isoformat()}.json"


def day_folder(template: str, table: str, day: dt.date) -> str:
    """The folder (relative to the data dir) of ``table`` for ``day``.

    ``template`` uses ``{table}`` and ``{date}``, e.g. ``postgres/{table}/{date}``.
    """
    if "{date}" not in template:
        raise PipelineError(f"folder template {template!r} has no {{date}}: days would overwrite each other")
    return template.format(table=table, date=day.isoformat())


def data_file_name(key: str) -> str:
    """The data file of table ``key`` (``{key}.csv``), refusing one the file system cannot hold.

    A table in a non-public schema whose names need encoding can exceed the 255
    bytes a Linux file name may have; the refusal names the fix instead of an OSError.
    """
    name = f"{key}.csv"
    return within_bytes(
        name,
        MAX_FILE_NAME_BYTES,
        f"its file name {name[:40]}...",
        f"the file system's {MAX_FILE_NAME_BYTES}; rename the table (or its schema) to something shorter, "
        "or leave it out",
    )


@dataclasses.dataclass(frozen=True)
class TableFile:
    """One table's data file in a day folder, as its metadata describes it.

    ``key`` is the table's folder name (``pipeline.names.table_folder``), unique per
    source: it keys the table in ``_schema.json``, ``_manifest.json`` and the
    receipt. ``table`` (and ``source_schema``, None for the CSV source) are the
    source's exact names, which are data and never a path.
    """

    key: str
    source: str
    source_schema: str | None
    table: str
    path: Path
    rows: int
    sha256: str
    schema: dict[str, Any]
    key_properties: list[str]
    # The receipt's window of an incremental table (``pipeline.bookmarks``); None: read whole.
    replication: dict[str, Any] | None = None


def write_folder_metadata(folder: Path, tables: list[TableFile]) -> None:
    """Write ``_schema.json`` and ``_manifest.json`` for the tables of ``folder``, then ``_SUCCESS``.

    The schema's ``properties`` keep the source's column order, which is the CSV's.
    """
    schemas = {
        t.key: {
            "source": t.source,
            "source_schema": t.source_schema,
            "table": t.table,
            "key_properties": t.key_properties,
            "schema": t.schema,
        }
        for t in tables
    }
    manifest = {
        t.key: {"file": t.path.name, "rows": t.rows, "sha256": t.sha256, "bytes": t.path.stat().st_size} for t in tables
    }
    write_text_atomic(folder / SCHEMA_FILE, dump_json({"tables": schemas}))
    write_text_atomic(folder / MANIFEST_FILE, dump_json({"tables": manifest}))
    write_text_atomic(folder / SUCCESS_FILE, "")


def _table_file(folder: Path, key: str, described: dict[str, Any], listed: dict[str, Any]) -> TableFile:
    """One table of a folder from its ``_schema.json`` and ``_manifest.json`` entries."""
    try:
        return TableFile(
            key=key,
            source=described["source"],
            source_schema=described["source_schema"],
            table=described["table"],
            path=folder / listed["file"],
            rows=listed["rows"],
            sha256=listed["sha256"],
            schema=described["schema"],
            key_properties=described["key_properties"],
        )
    except KeyError as exc:
        raise PipelineError(
            f"{folder}: table {key!r} lacks {exc.args[0]!r} in its metadata (written by an older "
            "version of step 1?); rerun step 1 for this day"
        ) from exc


def read_folder(folder: Path) -> list[TableFile]:
    """The tables of a complete day folder; refuses one without ``_SUCCESS``."""
    if not (folder / SUCCESS_FILE).is_file():
        raise PipelineError(f"{folder} has no {SUCCESS_FILE}: it was not completely written")
    return _tables_of(folder, read_json(folder / SCHEMA_FILE)["tables"], read_json(folder / MANIFEST_FILE)["tables"])


def _tables_of(folder: Path, schemas: dict[str, Any], manifest: dict[str, Any]) -> list[TableFile]:
    """The tables of ``folder`` from its ``_schema.json`` and ``_manifest.json`` contents, by key."""
    if set(schemas) != set(manifest):
        raise PipelineError(f"{folder}: {SCHEMA_FILE} and {MANIFEST_FILE} list different tables")
    return [_table_file(folder, key, schemas[key], entry) for key, entry in sorted(manifest.items())]


def metadata_checksums(folder: Path) -> dict[str, str]:
    """The sha256 of a day folder's metadata files, which the receipt covers like the data."""
    return {name: sha256_file(folder / name) for name in (SCHEMA_FILE, MANIFEST_FILE)}


def describe_folders(
    job: str, day: dt.date, folders: list[tuple[str, Path]]
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
    """The receipt's ``folders`` and ``tables`` of a run's day folders, each given as (name in the receipt, path).

    Refuses a table written twice by one run.
    """
    checksums: dict[str, dict[str, str]] = {}
    tables: dict[str, dict[str, Any]] = {}
    for relative, folder in folders:
        checksums[relative] = metadata_checksums(folder)
        for table in read_folder(folder):
            if table.key in tables:
                raise PipelineError(
                    f"{job} staged table {table.key!r} twice for {day} ({tables[table.key]['folder']} and "
                    f"{relative}); rerun: {rerun_command(job, day)}"
                )
            tables[table.key] = {
                "folder": relative,
                "file": table.path.name,
                "rows": table.rows,
                "sha256": table.sha256,
            }
    return checksums, tables


def publish_staged_day(data_dir: Path, job: str, day: dt.date, check: Callable[[], None]) -> dict[str, Any]:
    """Move every staged folder of ``job``/``day`` into place, then write the receipt.

    The receipt lists each table (by its key) with its folder and data checksum, and
    each folder with the checksums of its ``_schema.json`` and ``_manifest.json``, so
    step 2 reads exactly what this run wrote, metadata included; and ``left_out``, the
    source's tables the run did not extract (each with its source schema, exact name
    and reason), so that no table is missing from a day without a word. The published version
    goes first (its receipt, then its folders, into the day's history: see
    ``pipeline.history``), so while folders are being swapped the day counts as not
    succeeded; each folder is moved by renames on the same file system. ``check`` (that
    the run still holds the day: ``pipeline.locks.fenced``) runs before each change, so
    a run that lost its lock stops before its next rename. Returns the receipt.

    In an object store nothing moves: see ``pipeline.s3day.publish``.
    """
    if is_object_store(data_dir):
        from pipeline.s3day import publish

        return publish(data_dir, job, day, check)
    staging = staging_root(data_dir, job, day)
    if not staging.is_dir():
        raise PipelineError(
            f"{job} has nothing staged for {day} under {staging}: run the whole job: {rerun_command(job, day)}"
        )
    folders = sorted(marker.parent for marker in staging.rglob(SUCCESS_FILE))
    checksums, tables = describe_folders(job, day, [(f.relative_to(staging).as_posix(), f) for f in folders])

    # Here, not at the top: pipeline.history and pipeline.bookmarks build on this module.
    from pipeline.bookmarks import add_windows, staged_bookmarks
    from pipeline.history import drop_identical, keep_published

    add_windows(tables, staged_bookmarks(staging))

    receipt = receipt_path(data_dir, job, day)
    keep_published(data_dir, job, day, check)
    trash = data_dir / TRASH_DIR / uuid.uuid4().hex
    for folder in folders:
        destination = data_dir / folder.relative_to(staging)
        destination.parent.mkdir(parents=True, exist_ok=True)
        check()
        if destination.exists():
            trash.mkdir(parents=True, exist_ok=True)
            os.replace(destination, trash / uuid.uuid4().hex)
        os.replace(folder, destination)
        pause_point("publish-swap")
    left_out = read_json(staging / LEFT_OUT_FILE) if (staging / LEFT_OUT_FILE).is_file() else []
    content = {"job": job, "date": day.isoformat(), "folders": checksums, "tables": tables, "left_out": left_out}
    check()
    write_text_atomic(receipt, dump_json(content))
    drop_identical(data_dir, job, day, content)
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    return content


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
    return {table.key: table for table in _tables_of(folder, read[SCHEMA_FILE], read[MANIFEST_FILE])}


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
