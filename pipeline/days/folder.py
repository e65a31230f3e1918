"""A day folder's metadata: what ``_schema.json`` and ``_manifest.json`` say of its tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

from pipeline.core.commands import rerun_command
from pipeline.core.errors import PipelineError
from pipeline.core.files import dump_json, read_json, sha256_file, write_text_atomic
from pipeline.days.layout import MANIFEST_FILE, SCHEMA_FILE, SUCCESS_FILE


@dataclasses.dataclass(frozen=True)
class TableFile:
    """One table's data file in a day folder, as its metadata describes it.

    ``key`` is the table's folder name (``pipeline.core.names.table_folder``), unique per
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
    # The receipt's window of an incremental table (``pipeline.days.bookmarks``); None: read whole.
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
    return tables_of(folder, read_json(folder / SCHEMA_FILE)["tables"], read_json(folder / MANIFEST_FILE)["tables"])


def tables_of(folder: Path, schemas: dict[str, Any], manifest: dict[str, Any]) -> list[TableFile]:
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
