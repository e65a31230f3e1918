"""The one definition of a lossless widening: a column type change the analytics table follows by itself.

When a source column's type changes between days, the analytics table (one type for
every day's partition) can only follow without asking when every value of the old
type is a value of the new one, unchanged. That set, and nothing else, is this:

* ``smallint`` -> ``integer`` -> ``bigint`` (and ``smallint`` -> ``bigint``);
* ``smallint``, ``integer``, ``bigint`` -> ``numeric``, or ``numeric(p,s)`` with
  ``s >= 0`` and at least 5, 10, 19 digits before the point (``p - s``);
* ``real`` -> ``double precision``;
* ``numeric(p,s)`` -> ``numeric(p2,s2)`` with ``s2 >= s`` and ``p2 - s2 >= p - s``, or
  -> ``numeric`` (unconstrained);
* ``varchar(n)`` -> ``varchar(m)`` with ``m >= n``, or -> ``varchar``, or -> ``text``;
  ``varchar`` -> ``text``;
* ``bit varying(n)`` -> ``bit varying(m)`` with ``m >= n``, or -> ``bit varying``;
* ``timestamp(p)``, ``timestamptz(p)``, ``time(p)``, ``timetz(p)`` -> the same type
  with a precision ``q >= p``, or without one; ``interval(...)`` -> ``interval``;
* an array of one of these -> the array of its widening (``smallint[]`` -> ``integer[]``).

Everything else is not one: a narrowing, ``char(n)`` (its padding is part of the
value), a change of kind (``integer`` -> ``text``, ``timestamp`` -> ``timestamptz``),
``bigint`` -> ``double precision`` (rounds). Those need ``pipeline migrate``.

Types are compared as ``(oid, typmod)`` pairs, as ``pg_attribute`` and step 1's
``x-sql-type-oid`` / ``x-sql-typmod`` give them; all are built-in, fixed oids.
"""

from __future__ import annotations

import dataclasses

SMALLINT, INTEGER, BIGINT, NUMERIC = 21, 23, 20, 1700
REAL, DOUBLE = 700, 701
VARCHAR, TEXT, VARBIT = 1043, 25, 1562
TIMESTAMP, TIMESTAMPTZ, TIME, TIMETZ, INTERVAL = 1114, 1184, 1083, 1266, 1186
# The array types of the types above: array oid -> element oid (an array's typmod is its element's).
ARRAY_ELEMENTS = {
    1005: SMALLINT,
    1007: INTEGER,
    1016: BIGINT,
    1231: NUMERIC,
    1021: REAL,
    1022: DOUBLE,
    1015: VARCHAR,
    1009: TEXT,
    1563: VARBIT,
    1115: TIMESTAMP,
    1185: TIMESTAMPTZ,
    1183: TIME,
    1270: TIMETZ,
    1187: INTERVAL,
}
# Integer types: the digits every value fits in, and the wider integer types.
_INTEGER_DIGITS = {SMALLINT: 5, INTEGER: 10, BIGINT: 19}
_WIDER_INTEGERS = {SMALLINT: {INTEGER, BIGINT}, INTEGER: {BIGINT}, BIGINT: set()}
# Types whose typmod is a limit that only grows (a length or a precision).
_GROWING_TYPMOD = {VARCHAR, VARBIT, TIMESTAMP, TIMESTAMPTZ, TIME, TIMETZ}
_VARHDRSZ = 4
UNCONSTRAINED = -1


@dataclasses.dataclass(frozen=True)
class ColumnType:
    """A column's type: its oid and typmod, and its name as ``format_type`` prints it."""

    oid: int
    typmod: int
    name: str

    def same_type(self, other: ColumnType) -> bool:
        """Whether both are the same type, typmod included (the name is only for people)."""
        return (self.oid, self.typmod) == (other.oid, other.typmod)


def _numeric_digits(typmod: int) -> tuple[int, int]:
    """(digits before the point, scale) of ``numeric(p,s)``'s typmod; the scale may be negative."""
    packed = typmod - _VARHDRSZ
    precision, scale = (packed >> 16) & 0xFFFF, ((packed & 0x7FF) ^ 1024) - 1024
    return precision - scale, scale


def _numeric_holds(old_typmod: int, new_typmod: int) -> bool:
    if new_typmod == UNCONSTRAINED:
        return True
    if old_typmod == UNCONSTRAINED:
        return False
    (old_int, old_scale), (new_int, new_scale) = _numeric_digits(old_typmod), _numeric_digits(new_typmod)
    return new_scale >= old_scale and new_int >= old_int


def _scalar_widens(old: tuple[int, int], new: tuple[int, int]) -> bool:
    (old_oid, old_typmod), (new_oid, new_typmod) = old, new
    if old_oid in _INTEGER_DIGITS:
        if new_oid in _WIDER_INTEGERS[old_oid]:
            return True
        if new_oid != NUMERIC:
            return False
        if new_typmod == UNCONSTRAINED:
            return True
        digits, scale = _numeric_digits(new_typmod)
        return scale >= 0 and digits >= _INTEGER_DIGITS[old_oid]
    if (old_oid, new_oid) in ((REAL, DOUBLE), (VARCHAR, TEXT)):
        return True
    if old_oid != new_oid or old_typmod == new_typmod:
        return False
    if old_oid == NUMERIC:
        return _numeric_holds(old_typmod, new_typmod)
    if old_oid == INTERVAL:
        return new_typmod == UNCONSTRAINED
    if old_oid in _GROWING_TYPMOD:
        return new_typmod == UNCONSTRAINED or (old_typmod != UNCONSTRAINED and new_typmod > old_typmod)
    return False


def widens(old: ColumnType, new: ColumnType) -> bool:
    """Whether ``new`` is a lossless widening of ``old`` (the set in the module docstring)."""
    if old.oid in ARRAY_ELEMENTS and new.oid in ARRAY_ELEMENTS:
        return _scalar_widens((ARRAY_ELEMENTS[old.oid], old.typmod), (ARRAY_ELEMENTS[new.oid], new.typmod))
    return _scalar_widens((old.oid, old.typmod), (new.oid, new.typmod))
