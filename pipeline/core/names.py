"""Names from a source are data: how they become folder names and analytics schemas.

A source may name a table ``Orders``, ``order items``, ``a/b``, ``..`` or ``заказы``.
On disk each name becomes one path segment by one reversible, one-to-one encoding;
in the analytics database each name is kept exactly (always quoted with
``psycopg.sql.Identifier``) inside a schema that says which source it came from.

Folder names. A name made only of ``[a-z0-9_]`` stays as it is, so the common case
reads ``postgres/orders/2024-01-02/orders.csv``. Any other name has every UTF-8 byte
outside ``[a-z0-9_]`` written as ``%`` and two lower-case hex digits (``Orders`` ->
``%4frders``, ``a/b`` -> ``a%2fb``, ``..`` -> ``%2e%2e``). The result holds only
``[a-z0-9_%]``: never a separator, never ``.`` or ``..``, never two names that differ
only in case (so it is one-to-one on case-insensitive file systems too), at most
3 x 63 bytes for a PostgreSQL name. A name that needed no encoding holds no ``%``
and every encoded one does, so the two kinds never meet.

Analytics schemas. The Postgres source's tables of schema ``public`` go to schema
``postgres``; those of another source schema ``S`` to ``postgres__S``; the CSV
source's to ``csv``. The project's own objects (the result view, bookkeeping tables,
the load schemas) live in schemas whose names no source can produce, so a source name never
clashes with them.
"""

from __future__ import annotations

import re

from pipeline.core.errors import PipelineError

_PLAIN = re.compile(r"[a-z0-9_]+")
_PLAIN_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_")

POSTGRES_SOURCE = "postgres"
CSV_SOURCE = "csv"
DEFAULT_SOURCE_SCHEMA = "public"
# PostgreSQL truncates longer identifiers (NAMEDATALEN - 1 bytes).
MAX_IDENTIFIER_BYTES = 63


def within_bytes(text: str, limit: int, what: str, limit_and_fix: str) -> str:
    """Return ``text`` if its UTF-8 form has at most ``limit`` bytes, else refuse it in one line.

    File names and PostgreSQL identifiers are limited in bytes, not characters, so
    an encoded or non-ASCII name reaches the limit sooner than its length suggests.
    The refusal reads ``{what} would be N bytes, more than {limit_and_fix}``.
    """
    size = len(text.encode("utf-8"))
    if size > limit:
        raise PipelineError(f"{what} would be {size} bytes, more than {limit_and_fix}")
    return text


def encode_name(name: str) -> str:
    """The folder-name form of a source's table (or schema) name; see the module docstring."""
    if not name:
        raise PipelineError("an empty name cannot be a table or folder name")
    if _PLAIN.fullmatch(name):
        return name
    return "".join(chr(byte) if byte in _PLAIN_BYTES else f"%{byte:02x}" for byte in name.encode("utf-8"))


def table_folder(source_schema: str, table: str) -> str:
    """The folder name of a Postgres source table: ``orders``, or ``sales.orders`` outside ``public``.

    The ``.`` is unambiguous: inside an encoded name it is always ``%2e``.
    """
    if source_schema == DEFAULT_SOURCE_SCHEMA:
        return encode_name(table)
    return f"{encode_name(source_schema)}.{encode_name(table)}"


def analytics_schema(source: str, source_schema: str | None = None) -> str:
    """The analytics schema that holds a source's tables (see the module docstring)."""
    if source == CSV_SOURCE:
        return CSV_SOURCE
    if source != POSTGRES_SOURCE:
        raise PipelineError(f"unknown source {source!r}: expected {POSTGRES_SOURCE!r} or {CSV_SOURCE!r}")
    if source_schema in (None, DEFAULT_SOURCE_SCHEMA):
        return POSTGRES_SOURCE
    schema = f"{POSTGRES_SOURCE}__{source_schema}"
    return within_bytes(
        schema,
        MAX_IDENTIFIER_BYTES,
        f"source schema {source_schema!r}: its analytics schema {schema!r}",
        f"PostgreSQL's {MAX_IDENTIFIER_BYTES} for a name; rename the schema or leave it out of filter_schemas",
    )
