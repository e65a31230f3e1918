"""One entry of the ``files`` setting, checked and resolved into what a stream needs.

Relative paths are taken from ``base_dir`` (Meltano sets it to the project root:
Meltano runs a plugin in the caller's working directory, which is not the project
root when someone runs it from a subfolder), else from the working directory. Every
error names the setting (``files[0].schema``) so that the fix is obvious in
meltano.yml.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from upath import UPath

from pipeline.core.store import open_path, scheme_of
from tap_typed_csv.errors import TypedCSVError
from tap_typed_csv.schema import Column, annotated, columns_of, load_schema


@dataclasses.dataclass(frozen=True)
class CSVSource:
    """A CSV file declared as a stream: where it is, its schema and its key."""

    stream: str
    path: Path | UPath
    path_setting: str
    schema: dict[str, Any]
    columns: list[Column]
    key_properties: list[str]


def _data_path(value: str, base_dir: Path, setting: str) -> Path | UPath:
    """The CSV file: a local path (relative to ``base_dir``) or a URL of the data's store, e.g. ``s3://...``."""
    return open_path(value, setting) if scheme_of(value) else base_dir / value


def source_from_config(entry: Mapping[str, Any], index: int, base_dir: Path) -> CSVSource:
    """Resolve ``files[index]``: load the schema and check the key against it.

    The CSV file itself is not opened here, so discovery works without the data.
    """
    setting = f"files[{index}]"
    if not entry.get("path"):
        raise TypedCSVError(f"setting {setting}.path is empty (is the variable it names set?)")
    if not entry.get("schema"):
        raise TypedCSVError(f"setting {setting}.schema is empty")
    schema_path = base_dir / entry["schema"]
    schema = load_schema(schema_path, f"{setting}.schema")
    columns = columns_of(schema, schema_path)
    key_properties = list(entry.get("key_properties") or [])
    for key in key_properties:
        if key not in schema["properties"]:
            raise TypedCSVError(f"setting {setting}.key_properties: {key!r} is not a property of {schema_path}")
    return CSVSource(
        stream=entry["stream"],
        path=_data_path(entry["path"], base_dir, f"{setting}.path"),
        path_setting=f"{setting}.path",
        schema=annotated(schema, columns),
        columns=columns,
        key_properties=key_properties,
    )
