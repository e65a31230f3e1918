"""Singer values to PostgreSQL's CSV text form, so that ``COPY ... (FORMAT csv)`` reads them back.

Why not the csv module: it cannot write NULL and the empty string differently, and
PostgreSQL's CSV tells them apart only by quoting (an unquoted empty field is NULL,
``""`` is the empty string). Each column gets its encoder once, from its JSON schema,
so the per-value work is a dictionary lookup and one function call.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from pipeline.days.pgcsv import quote_text

Encoder = Callable[[Any], str]

NULL = ""
JSON_SQL_TYPES = frozenset({"json", "jsonb"})


def json_text(value: Any) -> str:
    """Return compact JSON for ``value``, keeping Decimal numbers exactly as they were read.

    The Singer reader parses every JSON number with a fraction as Decimal, which
    ``json.dumps`` refuses; ``str(Decimal)`` is the number's own text.
    """
    if isinstance(value, dict):
        return "{" + ",".join(f"{json_text(str(k))}:{json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return str(value)
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def encode_value(value: Any) -> str:
    """Encode a value of any column that is neither bytea nor json."""
    if value is None:
        return NULL
    if isinstance(value, str):
        return quote_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict | list):
        return quote_text(json_text(value))
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"cannot write a value of type {type(value).__name__} to CSV: {value!r}")


def encode_json(value: Any) -> str:
    """Encode a json/jsonb value: always JSON text, so a JSON string ``"a"`` stays a string."""
    if value is None:
        return NULL
    return quote_text(json_text(value))


def encode_bytea(value: Any) -> str:
    r"""Encode a bytea value sent as hex (contentEncoding base16) in PostgreSQL's ``\x`` form."""
    if value is None:
        return NULL
    return quote_text("\\x" + str(value).lower())


def column_encoder(prop: Mapping[str, Any]) -> Encoder:
    """Choose the encoder of a column from its JSON schema."""
    if prop.get("contentEncoding") == "base16":
        return encode_bytea
    if prop.get("x-sql-datatype") in JSON_SQL_TYPES:
        return encode_json
    return encode_value


class RowEncoder:
    """Turns records into CSV lines, in the column order of a stream's schema."""

    def __init__(self, properties: Mapping[str, Mapping[str, Any]]) -> None:
        self.columns = list(properties)
        self._encoders = [(name, column_encoder(prop)) for name, prop in properties.items()]

    def line(self, record: Mapping[str, Any]) -> str:
        """Return one record as a CSV line; a missing key is NULL."""
        return ",".join(encode(record.get(name)) for name, encode in self._encoders) + "\n"

    def lines(self, records: Iterable[Mapping[str, Any]]) -> str:
        """Return many records as CSV text."""
        return "".join(self.line(record) for record in records)
