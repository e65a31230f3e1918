"""Which type a source column gets in the analytics database, decided from the source's catalog.

The analytics database is another PostgreSQL that has only the built-in types: no
enum, domain or composite of the source, no extension (citext, hstore, vector...).
So each column's type is resolved once, by kind, never from a per-column list:

- a domain is its base type (domains over domains too); its constraints are noted;
- enum, composite, range, multirange and every non-built-in type become ``text``,
  their values written in their text form (``COPY`` of ``col::text``);
- so do the built-in types that cannot travel as themselves
  (``pipeline.source.builtin_types.TEXT_OIDS``: ``reg*``, ``aclitem``, the types without input);
- an array of one of those becomes ``text[]``; an array of a domain, its base's array;
- every other (built-in) type stays exactly as it is, typmod included.

Identity, serial and generated columns need nothing: their values are plain values
of their type. A built-in type is one created by ``initdb`` (oid below 16384), so
the analytics database has it with the same oid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pipeline.source.builtin_types import TEXT_OIDS

FIRST_NORMAL_OID = 16384
TEXT_OID = 25
TEXT_ARRAY_OID = 1009
BOOL_OID = 16
BYTEA_OID = 17
# Type kinds (pg_type.typtype) whose values travel as text whatever their schema.
TEXT_KINDS = frozenset({"e", "c", "r", "m"})  # enum, composite, range, multirange


@dataclasses.dataclass(frozen=True)
class PgType:
    """The pg_type facts that the mapping needs about one type."""

    oid: int
    kind: str  # typtype: b base, c composite, d domain, e enum, p pseudo, r range, m multirange
    base_oid: int  # typbasetype of a domain, else 0
    base_typmod: int  # typtypmod of a domain, else -1
    element_oid: int  # typelem of a true array (typlen -1), else 0
    array_oid: int  # typarray: the array type of this type, 0 if none
    not_null: bool  # a domain's NOT NULL
    checks: tuple[str, ...]  # a domain's CHECK constraints, as pg_get_constraintdef prints them


@dataclasses.dataclass(frozen=True)
class AnalyticsType:
    """The type a column gets in the analytics database, and what the source had instead."""

    oid: int
    typmod: int
    cast_to_text: bool  # the value is read as ``::text`` / ``::text[]`` (it is not the source's type)
    domain_checks: tuple[str, ...] = ()

    @property
    def is_source_type(self) -> bool:
        """False when the source type differs (a domain, or a type that travels as text)."""
        return not self.cast_to_text and not self.domain_checks


class UnknownTypeError(LookupError):
    """A type oid that the catalog query did not return (the catalog changed while reading)."""


def _is_builtin(oid: int) -> bool:
    return oid < FIRST_NORMAL_OID


def _domain_checks(domain: PgType) -> tuple[str, ...]:
    return (("NOT NULL",) if domain.not_null else ()) + domain.checks


def resolve(oid: int, typmod: int, types: Mapping[int, PgType]) -> AnalyticsType:
    """The analytics type of a column of type ``oid`` with ``typmod`` (see the module docstring)."""
    checks: tuple[str, ...] = ()
    if oid not in types:
        raise UnknownTypeError(oid)
    while types[oid].kind == "d":
        domain = types[oid]
        checks += _domain_checks(domain)
        typmod = domain.base_typmod if typmod == -1 else typmod
        oid = domain.base_oid
        if oid not in types:
            raise UnknownTypeError(oid)
    kind = types[oid]
    if kind.element_oid:
        element = resolve(kind.element_oid, typmod, types)
        checks += element.domain_checks
        if element.cast_to_text:
            return AnalyticsType(TEXT_ARRAY_OID, -1, cast_to_text=True, domain_checks=checks)
        if element.oid != kind.element_oid:
            return AnalyticsType(types[element.oid].array_oid, element.typmod, cast_to_text=False, domain_checks=checks)
        return AnalyticsType(oid, typmod, cast_to_text=False, domain_checks=checks)
    if kind.kind in TEXT_KINDS or oid in TEXT_OIDS or not _is_builtin(oid):
        return AnalyticsType(TEXT_OID, -1, cast_to_text=True, domain_checks=checks)
    return AnalyticsType(oid, typmod, cast_to_text=False, domain_checks=checks)


# JSON Schema of an analytics type that discovery could not give (a mapped column):
# by the element (for arrays) or the type itself.
_JSON_BY_OID: dict[int, dict[str, Any]] = {
    20: {"type": "integer"},
    21: {"type": "integer"},
    23: {"type": "integer"},
    700: {"type": "number"},
    701: {"type": "number"},
    1700: {"type": "number"},
    16: {"type": "boolean"},
    1082: {"type": "string", "format": "date"},
    1114: {"type": "string", "format": "date-time"},
    1184: {"type": "string", "format": "date-time"},
}
_JSON_ANY = {
    "type": ["string", "number", "integer", "array", "object", "boolean", "null"],
    "additionalProperties": True,
}
_JSON_OIDS = frozenset({114, 3802})  # json, jsonb


def json_schema(oid: int, types: Mapping[int, PgType], *, nullable: bool) -> dict[str, Any]:
    """A JSON Schema for values of the built-in type ``oid`` (a mapped column's analytics type)."""
    if oid in _JSON_OIDS:
        return dict(_JSON_ANY)
    element = types[oid].element_oid if oid in types else (TEXT_OID if oid == TEXT_ARRAY_OID else 0)
    if element:
        item = json_schema(element, types, nullable=True)
        return {"type": ["array", "null"] if nullable else ["array"], "items": item}
    described = dict(_JSON_BY_OID.get(oid, {"type": "string"}))
    described["type"] = [described["type"], "null"] if nullable else [described["type"]]
    if oid == BYTEA_OID:
        described["contentEncoding"] = "base16"
    return described
