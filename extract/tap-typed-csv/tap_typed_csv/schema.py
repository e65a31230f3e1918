"""A stream's JSON Schema file: loaded, its declared SQL types resolved, one column spec per property.

Every property declares its SQL type in ``x-sql-datatype``; the type decides how each
field is checked (format and range) and the tap sends the schema downstream with the
type's canonical name, oid and typmod added (see :mod:`tap_typed_csv.sqltypes`), so
that the loader creates the column from the catalog. A type the tap cannot check is
refused here, before a row is read.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

from tap_typed_csv.convert import Converter
from tap_typed_csv.errors import TypedCSVError
from tap_typed_csv.sqltypes import SUPPORTED, SqlType, parse_sql_type


@dataclasses.dataclass(frozen=True)
class Column:
    """One property of the schema as the reader uses it."""

    name: str
    sql: SqlType
    nullable: bool
    # The type's converter, as a field: the reader's hot loop calls it once per field.
    convert: Converter = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "convert", self.sql.convert)


def load_schema(path: Path, setting: str) -> dict[str, Any]:
    """Read the JSON object in ``path``; errors name the file and the config ``setting``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TypedCSVError(f"{path}: no such file (setting {setting})") from None
    except OSError as exc:
        raise TypedCSVError(f"{path}: cannot read: {exc.strerror} (setting {setting})") from None
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TypedCSVError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} (setting {setting})"
        ) from None
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict) or not schema["properties"]:
        raise TypedCSVError(f"{path}: not a JSON Schema object with properties (setting {setting})")
    return schema


def columns_of(schema: dict[str, Any], path: Path) -> list[Column]:
    """One :class:`Column` per property, in schema order; errors name the file, column and type.

    A property is nullable only if its ``type`` lists ``"null"``: a property that is
    ``required`` but typed ``["integer", "null"]`` may still be NULL, as in JSON Schema.
    """
    return [_column(name, prop, path) for name, prop in schema["properties"].items()]


def _column(name: str, prop: Any, path: Path) -> Column:
    declared = prop.get("x-sql-datatype") if isinstance(prop, dict) else None
    if not isinstance(declared, str):
        raise TypedCSVError(f"{path}: column {name!r} declares no x-sql-datatype; declare one of: {SUPPORTED}")
    try:
        sql = parse_sql_type(declared)
    except ValueError as exc:
        raise TypedCSVError(
            f"{path}: column {name!r}: type {declared!r} is not supported ({exc}); supported: {SUPPORTED}"
        ) from None
    raw_type = prop.get("type")
    types = [raw_type] if isinstance(raw_type, str) else raw_type
    if not isinstance(types, list) or [item for item in types if item != "null"] != [sql.json_type]:
        raise TypedCSVError(
            f"{path}: column {name!r}: type {declared!r} travels as JSON type {sql.json_type!r}; "
            f'set "type" to {sql.json_type!r} or [{sql.json_type!r}, "null"], not {raw_type!r}'
        )
    if prop.get("format", sql.string_format) != sql.string_format:
        raise TypedCSVError(
            f"{path}: column {name!r}: format {prop['format']!r} contradicts type {declared!r}; remove it"
        )
    return Column(name, sql, "null" in types)


def annotated(schema: dict[str, Any], columns: list[Column]) -> dict[str, Any]:
    """The schema as sent downstream: each column with its type's canonical name, oid and typmod."""
    result = copy.deepcopy(schema)
    for column in columns:
        result["properties"][column.name].update(column.sql.schema_keys())
    return result
