"""The SQL types a CSV column may declare (``x-sql-datatype``), each with its checks and its catalog identity.

A declaration is read once, at start: an unsupported or malformed type refuses the
whole run before a row is read. Each supported type knows

* its canonical name as PostgreSQL's ``format_type`` writes it (``varchar(15)`` ->
  ``character varying(15)``), its built-in type oid and its typmod, which the tap
  writes into the column's schema so that step 2 creates the column from the catalog
  (``format_type(oid, typmod)``) and never from declared text;
* the JSON Schema type (and string format) its values travel as;
* a converter that checks a field's format and range (see :mod:`tap_typed_csv.convert`);
* a pattern of the field text that is valid and already canonical, for the batch
  mode's block-wise fast path (see :mod:`tap_typed_csv.patterns`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from tap_typed_csv import patterns
from tap_typed_csv.convert import (
    NUMERIC_MAX_FRACTION_DIGITS,
    NUMERIC_MAX_INTEGER_DIGITS,
    Converter,
    float_in,
    integer_in,
    matching,
    numeric_in,
    text_up_to,
    to_boolean,
)

# PostgreSQL stores a length or precision typmod with the varlena header size added.
_VARHDRSZ = 4
_NO_TYPMOD = -1
_NUMERIC_MAX_PRECISION = 1000
_VARCHAR_MAX_LENGTH = 10485760
_TIMESTAMP_MAX_PRECISION = 6

SUPPORTED = (
    "smallint, integer, bigint, real, double precision, numeric[(p[,s])], boolean, date, "
    "timestamp[(p)] [with|without time zone], timestamptz[(p)], text, varchar[(n)]"
)


@dataclasses.dataclass(frozen=True)
class SqlType:
    """One declared column type, resolved."""

    datatype: str  # format_type text, e.g. "character varying(15)"
    oid: int
    typmod: int
    json_type: str
    string_format: str | None
    convert: Converter
    canonical: str  # regex of a field that is valid and needs no rewriting

    def schema_keys(self) -> dict[str, Any]:
        """What the tap writes into the column's JSON schema about its SQL type."""
        keys: dict[str, Any] = {
            "x-sql-datatype": self.datatype,
            "x-sql-type-oid": self.oid,
            "x-sql-typmod": self.typmod,
        }
        if self.string_format:
            keys["format"] = self.string_format
        return keys


def _integer(name: str, oid: int, bits: int) -> SqlType:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return SqlType(name, oid, _NO_TYPMOD, "integer", None, integer_in(low, high, name), patterns.integer(low, high))


def _float(name: str, oid: int, single: bool, max_integer_digits: int) -> SqlType:
    return SqlType(
        name, oid, _NO_TYPMOD, "number", None, float_in(name, single), patterns.decimal(max_integer_digits, None)
    )


def _numeric(precision: int | None, scale: int | None) -> SqlType:
    if precision is None:
        return SqlType(
            "numeric",
            1700,
            _NO_TYPMOD,
            "number",
            None,
            numeric_in(None, 0),
            patterns.decimal(NUMERIC_MAX_INTEGER_DIGITS, NUMERIC_MAX_FRACTION_DIGITS),
        )
    scale = scale or 0
    if not 1 <= precision <= _NUMERIC_MAX_PRECISION:
        raise ValueError(f"the precision of numeric must be between 1 and {_NUMERIC_MAX_PRECISION}")
    if not 0 <= scale <= precision:
        raise ValueError(f"the scale of numeric({precision},{scale}) must be between 0 and the precision")
    return SqlType(
        f"numeric({precision},{scale})",
        1700,
        ((precision << 16) | scale) + _VARHDRSZ,
        "number",
        None,
        numeric_in(precision, scale),
        patterns.decimal(precision - scale, scale),
    )


def _timestamp(precision: int | None, with_zone: bool) -> SqlType:
    if precision is not None and not 0 <= precision <= _TIMESTAMP_MAX_PRECISION:
        raise ValueError(f"the precision of a timestamp must be between 0 and {_TIMESTAMP_MAX_PRECISION}")
    modifier = "" if precision is None else f"({precision})"
    zone = "with time zone" if with_zone else "without time zone"
    if with_zone:
        pattern, what = patterns.TIMESTAMPTZ, "a timestamp with an offset (YYYY-MM-DD HH:MM[:SS[.f]] then Z or +HH:MM)"
    else:
        pattern, what = patterns.TIMESTAMP, "a timestamp without offset (YYYY-MM-DD[ HH:MM[:SS[.f]]])"
    return SqlType(
        f"timestamp{modifier} {zone}",
        1184 if with_zone else 1114,
        _NO_TYPMOD if precision is None else precision,
        "string",
        "date-time",
        matching(pattern, what),
        pattern,
    )


def _varchar(length: int | None) -> SqlType:
    if length is None:
        return SqlType(
            "character varying", 1043, _NO_TYPMOD, "string", None, text_up_to(None, "varchar"), patterns.text()
        )
    if not 1 <= length <= _VARCHAR_MAX_LENGTH:
        raise ValueError(f"the length of varchar must be between 1 and {_VARCHAR_MAX_LENGTH}")
    name = f"character varying({length})"
    return SqlType(name, 1043, length + _VARHDRSZ, "string", None, text_up_to(length, name), patterns.text(length))


# Declared name (lower case, single spaces) -> the type, given its modifiers.
_PLAIN: dict[str, Callable[[], SqlType]] = {
    "smallint": lambda: _integer("smallint", 21, 16),
    "integer": lambda: _integer("integer", 23, 32),
    "bigint": lambda: _integer("bigint", 20, 64),
    "real": lambda: _float("real", 700, True, 38),
    "double precision": lambda: _float("double precision", 701, False, 308),
    "boolean": lambda: SqlType("boolean", 16, _NO_TYPMOD, "boolean", None, to_boolean, patterns.BOOLEAN),
    "date": lambda: SqlType(
        "date", 1082, _NO_TYPMOD, "string", "date", matching(patterns.DATE, "a date (YYYY-MM-DD)"), patterns.DATE
    ),
    "text": lambda: SqlType("text", 25, _NO_TYPMOD, "string", None, text_up_to(None, "text"), patterns.text()),
}
_ALIASES = {
    "int2": "smallint",
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "decimal": "numeric",
    "character varying": "varchar",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
}
_MODIFIED: dict[str, Callable[[int | None, int | None], SqlType]] = {
    "numeric": _numeric,
    "varchar": lambda length, _: _varchar(length),
    "timestamp": lambda precision, _: _timestamp(precision, with_zone=False),
    "timestamptz": lambda precision, _: _timestamp(precision, with_zone=True),
}
_MAX_MODIFIERS = {"numeric": 2, "varchar": 1, "timestamp": 1, "timestamptz": 1}

# name, optional "(a)" or "(a,b)", and for timestamps the zone clause after the modifier.
_DECLARATION = re.compile(
    r"(?P<name>[a-z][a-z0-9 ]*?)\s*(?:\(\s*(?P<a>[0-9]+)\s*(?:,\s*(?P<b>[0-9]+)\s*)?\))?"
    r"(?P<zone>\s+with(?:out)?\s+time\s+zone)?"
)


def parse_sql_type(declared: str) -> SqlType:
    """Resolve a declared SQL type; ``ValueError`` says why it is not supported."""
    match = _DECLARATION.fullmatch(declared.strip().lower())
    if match is None:
        raise ValueError("not a type declaration")
    name = " ".join((match["name"] + (match["zone"] or "")).split())
    name = _ALIASES.get(name, name)
    modifiers = [int(value) for value in (match["a"], match["b"]) if value is not None]
    if name in _PLAIN and not modifiers:
        return _PLAIN[name]()
    if name in _MODIFIED and len(modifiers) <= _MAX_MODIFIERS[name]:
        first, second = [*modifiers, None, None][:2]
        return _MODIFIED[name](first, second)
    if name in _PLAIN or name in _MODIFIED:
        raise ValueError("these type modifiers are not supported")
    raise ValueError("not a supported type")
