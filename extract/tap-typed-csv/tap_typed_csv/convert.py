"""Text of one CSV field to the Python value its JSON Schema type promises.

Each converter raises ``ValueError`` with a short reason; the reader adds the file,
line and column. The checks are strict on purpose: ``int()`` and ``Decimal()`` alone
would accept surrounding spaces, ``1_000``, non-ASCII digits or ``NaN``, none of which
the database load downstream would take.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Callable
from typing import Any

from tap_typed_csv.errors import show

Converter = Callable[[str], Any]

_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BOOLEANS = {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}


def to_integer(text: str) -> int:
    """Parse an optionally signed run of ASCII digits as ``int``."""
    if _INTEGER.fullmatch(text) is None:
        raise ValueError(f"{show(text)} is not an integer")
    try:
        return int(text)
    except ValueError:  # more digits than int() allows from a string
        raise ValueError(f"{show(text)} is not an integer") from None


def to_number(text: str) -> decimal.Decimal:
    """Parse a decimal literal as ``Decimal``: exact, so ``9.8`` is sent as ``9.8``, not a float."""
    if _NUMBER.fullmatch(text) is None:
        raise ValueError(f"{show(text)} is not a number")
    return decimal.Decimal(text)


def to_boolean(text: str) -> bool:
    """Parse ``true/false/t/f/1/0`` in any letter case."""
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise ValueError(f"{show(text)} is not a boolean (true/false/t/f/1/0)") from None


def to_string(text: str) -> str:
    """Keep any text as is."""
    return text


def _checked_iso_text(
    text: str, *, shape: Callable[[str], re.Match[str] | None], parse: Callable[[str], object], what: str
) -> str:
    """Keep ``text`` as it is once it has the ISO ``shape`` and ``parse`` accepts it as ``what``."""
    try:
        if shape(text) is None:
            raise ValueError
        parse(text)
    except ValueError:
        raise ValueError(f"{show(text)} is not {what}") from None
    return text


def to_date_string(text: str) -> str:
    """Check a ``YYYY-MM-DD`` calendar date and keep it as the same text."""
    return _checked_iso_text(text, shape=_DATE.fullmatch, parse=datetime.date.fromisoformat, what="a date (YYYY-MM-DD)")


def to_datetime_string(text: str) -> str:
    """Check an ISO 8601 date-time (``YYYY-MM-DD...``) and keep it as the same text."""
    return _checked_iso_text(text, shape=_DATE.match, parse=datetime.datetime.fromisoformat, what="an ISO date-time")


_BY_TYPE: dict[str, Converter] = {
    "integer": to_integer,
    "number": to_number,
    "boolean": to_boolean,
    "string": to_string,
}
_BY_STRING_FORMAT: dict[str, Converter] = {
    "date": to_date_string,
    "date-time": to_datetime_string,
}

SUPPORTED_TYPES = tuple(_BY_TYPE)


def converter_for(json_type: str, string_format: str | None) -> Converter:
    """Pick the converter for a JSON Schema type (one of :data:`SUPPORTED_TYPES`).

    Only ``string`` looks at ``format``; an unknown format is plain text, as JSON
    Schema itself treats formats as annotations.
    """
    if json_type == "string" and string_format in _BY_STRING_FORMAT:
        return _BY_STRING_FORMAT[string_format]
    return _BY_TYPE[json_type]
