"""Text of one CSV field to the Python value its declared SQL type promises, range included.

Each converter raises ``ValueError`` with a short reason; the reader adds the file,
line and column. The checks are strict on purpose: ``int()`` and ``Decimal()`` alone
would accept surrounding spaces, ``1_000``, non-ASCII digits or ``NaN``, none of which
the database load downstream would take; and a value that is well formed but out of
the declared type's range (40000 in a ``smallint``) must fail here, in step 1, naming
its line, not in step 2's load of the whole day.
"""

from __future__ import annotations

import decimal
import re
import struct
from collections.abc import Callable
from typing import Any

from tap_typed_csv.errors import show

Converter = Callable[[str], Any]

_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLEANS = {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}

# PostgreSQL's own limits of an unconstrained numeric.
NUMERIC_MAX_INTEGER_DIGITS = 131072
NUMERIC_MAX_FRACTION_DIGITS = 16383


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


def integer_in(low: int, high: int, type_name: str) -> Converter:
    """A converter of optionally signed ASCII digits to ``int``, refusing values outside ``low..high``."""

    def convert(text: str) -> int:
        if _INTEGER.fullmatch(text) is None:
            raise ValueError(f"{show(text)} is not an integer")
        value = int(text) if len(text) <= 20 else _long_integer(text)
        if value is None or not low <= value <= high:
            raise ValueError(f"{show(text)} is out of range for {type_name} ({low} to {high})")
        return value

    return convert


def _long_integer(text: str) -> int | None:
    """Signed digits with many leading zeros as ``int``; None when more significant digits than any SQL integer.

    ``int()`` refuses a string of more than 4300 digits; no SQL integer has more than 19.
    """
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 19:
        return None
    return -int(digits) if text.startswith("-") else int(digits)


def _as_float4(value: float) -> float:
    """``value`` rounded to single precision, as PostgreSQL stores a ``real``; OverflowError when too big."""
    return struct.unpack("f", struct.pack("f", value))[0]


def float_in(type_name: str, single: bool) -> Converter:
    """A number converter refusing what ``real`` (``single``) or ``double precision`` cannot hold.

    Too big for the type is refused, and so is a non-zero value so small that it would
    become 0 (PostgreSQL refuses both); the value itself stays the exact decimal.
    """
    # Decimal exponents well inside the type's range need no float conversion.
    safe = range(-37, 38) if single else range(-307, 308)

    def convert(text: str) -> decimal.Decimal:
        value = to_number(text)
        if value.adjusted() in safe or value.is_zero():
            return value
        try:
            rounded = float(value)
            if single:
                rounded = _as_float4(rounded)
        except OverflowError:
            rounded = float("inf")
        if rounded in (float("inf"), float("-inf")) or rounded == 0:
            raise ValueError(f"{show(text)} is out of range for {type_name}")
        return value

    return convert


def numeric_in(precision: int | None, scale: int) -> Converter:
    """A number converter for ``numeric(precision, scale)`` (``precision`` None: unconstrained).

    As PostgreSQL does, the value is rounded to ``scale`` decimals (half away from
    zero) and must then stay below ``10 ** (precision - scale)``; the value sent is the
    text as read, which the database rounds the same way.
    """

    def convert(text: str) -> decimal.Decimal:
        value = to_number(text)
        if value.is_zero():
            return value
        if precision is None:
            fraction_digits = -int(value.as_tuple().exponent)  # finite: to_number refuses NaN and infinities
            if value.adjusted() >= NUMERIC_MAX_INTEGER_DIGITS or fraction_digits > NUMERIC_MAX_FRACTION_DIGITS:
                raise ValueError(
                    f"{show(text)} is out of range for numeric (at most {NUMERIC_MAX_INTEGER_DIGITS} digits "
                    f"before the point and {NUMERIC_MAX_FRACTION_DIGITS} after it)"
                )
            return value
        limit = precision - scale
        fits = value.adjusted() < limit
        if fits:
            context = decimal.Context(prec=precision + 2, rounding=decimal.ROUND_HALF_UP)
            rounded = value.quantize(decimal.Decimal(1).scaleb(-scale), context=context)
            fits = rounded.is_zero() or rounded.adjusted() < limit
        if not fits:
            raise ValueError(
                f"{show(text)} is out of range for numeric({precision},{scale}) "
                f"(it must round to an absolute value below 10^{limit})"
            )
        return value

    return convert


def matching(pattern: str, what: str) -> Converter:
    """A converter that keeps the text as it is once it fully matches ``pattern`` (dates, timestamps)."""
    compiled = re.compile(pattern)

    def convert(text: str) -> str:
        if compiled.fullmatch(text) is None:
            raise ValueError(f"{show(text)} is not {what}")
        return text

    return convert


def text_up_to(max_length: int | None, type_name: str) -> Converter:
    """A converter that keeps text of at most ``max_length`` characters (None: any) without NUL."""

    def convert(text: str) -> str:
        if "\x00" in text:
            raise ValueError(f"{show(text)} holds a NUL character, which PostgreSQL text cannot store")
        if max_length is not None and len(text) > max_length:
            raise ValueError(f"{show(text)} is {len(text)} characters long, longer than {type_name} allows")
        return text

    return convert
