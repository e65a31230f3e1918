"""A stream's JSON Schema file: loaded as is, and read into one column spec per property.

The schema dict itself is sent downstream unchanged (the ``x-sql-datatype`` keys are
how the loader creates the right column types); the column specs are only what the
reader needs to type and check each field.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from tap_typed_csv.convert import SUPPORTED_TYPES, Converter, converter_for
from tap_typed_csv.errors import TypedCSVError


@dataclasses.dataclass(frozen=True)
class Column:
    """One property of the schema as the reader uses it."""

    name: str
    convert: Converter
    nullable: bool


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
    """One :class:`Column` per property, in schema order.

    A property is nullable only if its ``type`` lists ``"null"``: a property that is
    ``required`` but typed ``["integer", "null"]`` may still be NULL, as in JSON Schema.
    """
    columns = []
    for name, prop in schema["properties"].items():
        raw_type = prop.get("type") if isinstance(prop, dict) else None
        types = [raw_type] if isinstance(raw_type, str) else raw_type
        if not isinstance(types, list) or not all(isinstance(item, str) for item in types):
            raise TypedCSVError(f"{path}: property {name!r} has no usable 'type'")
        value_types = [item for item in types if item != "null"]
        if len(value_types) != 1 or value_types[0] not in SUPPORTED_TYPES:
            raise TypedCSVError(
                f"{path}: property {name!r} has type {raw_type!r}; supported: one of "
                f"{', '.join(SUPPORTED_TYPES)}, optionally with 'null'"
            )
        columns.append(Column(name, converter_for(value_types[0], prop.get("format")), "null" in types))
    return columns
