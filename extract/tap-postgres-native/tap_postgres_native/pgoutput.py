"""Decoding of ``pgoutput``'s binary messages (protocol version 1), as the SQL functions return them.

Why our own decoder: the built-in ``pgoutput`` plugin needs no extension on the source
(wal2json, which MeltanoLabs tap-postgres's LOG_BASED needs, is one), and psycopg2's
replication protocol support would need a walsender session held open for the whole
read. ``pg_logical_slot_peek_binary_changes`` returns the same messages as rows of a
plain SQL query, one message per row, so this module only turns bytes into values.

Message layouts: PostgreSQL's "Logical Replication Message Formats". Values come as
the server's text output (``t``), NULL (``n``) or "unchanged TOASTed value" (``u``,
an update that did not touch a large value: the value is not sent, see
``UNCHANGED``). Messages this project does not ask for (``Origin``, ``Type``,
``Message``) are decoded as ``Ignored``.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Final


class _Unchanged:
    """The ``u`` marker: an update left this TOASTed value as it was, and the log does not carry it."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()
Value = str | None | _Unchanged
Tuple = tuple[Value, ...]


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a ``Relation`` message: its name, type and whether it is part of the replica identity."""

    name: str
    type_oid: int
    key: bool


@dataclasses.dataclass(frozen=True)
class Begin:
    """A transaction starts; ``final_lsn`` is where its commit record starts (the transaction's order)."""

    final_lsn: int
    xid: int


@dataclasses.dataclass(frozen=True)
class Commit:
    """A transaction ends: ``commit_lsn`` as ``Begin.final_lsn``, ``end_lsn`` just past its commit record."""

    commit_lsn: int
    end_lsn: int


@dataclasses.dataclass(frozen=True)
class Relation:
    """A table as the following changes see it (sent again after every change of its definition)."""

    relid: int
    schema: str
    name: str
    replica_identity: str  # d(efault), n(othing), f(ull), i(ndex)
    columns: tuple[Column, ...]


@dataclasses.dataclass(frozen=True)
class Insert:
    """A new row, every column given."""

    relid: int
    new: Tuple


@dataclasses.dataclass(frozen=True)
class Update:
    """A changed row; ``old`` is its key (``K``) when the key changed, or the whole old row (``O``) under FULL."""

    relid: int
    old: Tuple | None
    old_kind: str | None  # "K", "O" or None
    new: Tuple


@dataclasses.dataclass(frozen=True)
class Delete:
    """A deleted row: its key columns (``K``, others NULL) or, under REPLICA IDENTITY FULL, the row (``O``)."""

    relid: int
    old: Tuple
    old_kind: str


@dataclasses.dataclass(frozen=True)
class Truncate:
    """One ``TRUNCATE`` of the tables ``relids`` (options: 1 CASCADE, 2 RESTART IDENTITY)."""

    relids: tuple[int, ...]
    options: int


@dataclasses.dataclass(frozen=True)
class Ignored:
    """A message kind the project does not use (Origin, Type, logical decoding Message)."""

    kind: str


Message = Begin | Commit | Relation | Insert | Update | Delete | Truncate | Ignored


class DecodeError(ValueError):
    """Bytes that are not a pgoutput protocol-1 message (or one this decoder does not know)."""


class _Reader:
    """A cursor over one message's bytes, in the protocol's network byte order."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def _take(self, size: int) -> bytes:
        end = self._at + size
        if end > len(self._data):
            raise DecodeError(f"message ends at byte {len(self._data)}, {end} needed")
        chunk = self._data[self._at : end]
        self._at = end
        return chunk

    def byte(self) -> str:
        return self._take(1).decode("ascii")

    def int8(self) -> int:
        return self._take(1)[0]

    def int16(self) -> int:
        return struct.unpack("!h", self._take(2))[0]

    def int32(self) -> int:
        return struct.unpack("!i", self._take(4))[0]

    def uint32(self) -> int:
        return struct.unpack("!I", self._take(4))[0]

    def int64(self) -> int:
        return struct.unpack("!q", self._take(8))[0]

    def string(self) -> str:
        end = self._data.index(b"\x00", self._at)
        text = self._data[self._at : end].decode("utf-8")
        self._at = end + 1
        return text

    def tuple(self) -> Tuple:
        values: list[Value] = []
        for _ in range(self.int16()):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            elif kind == "t":
                values.append(self._take(self.int32()).decode("utf-8"))
            else:
                raise DecodeError(f"unknown tuple value kind {kind!r} (binary values are not asked for)")
        return tuple(values)

    def done(self) -> None:
        if self._at != len(self._data):
            raise DecodeError(f"{len(self._data) - self._at} bytes left after the message")


def decode(data: bytes) -> Message:
    """The message in ``data`` (one row's ``data`` of ``pg_logical_slot_peek_binary_changes``)."""
    if not data:
        raise DecodeError("empty message")
    reader = _Reader(bytes(data))
    kind = reader.byte()
    message: Message
    if kind == "B":
        final_lsn = reader.int64()
        reader.int64()  # commit timestamp
        message = Begin(final_lsn, reader.uint32())
    elif kind == "C":
        reader.int8()  # flags, unused
        commit_lsn = reader.int64()
        message = Commit(commit_lsn, reader.int64())
        reader.int64()  # commit timestamp
    elif kind == "R":
        relid = reader.uint32()
        schema, name, identity = reader.string(), reader.string(), chr(reader.int8())
        columns = []
        for _ in range(reader.int16()):
            flags = reader.int8()
            column_name, type_oid = reader.string(), reader.uint32()
            reader.int32()  # atttypmod
            columns.append(Column(column_name, type_oid, bool(flags & 1)))
        message = Relation(relid, schema or "pg_catalog", name, identity, tuple(columns))
    elif kind == "I":
        relid = reader.uint32()
        _expect(reader.byte(), "N")
        message = Insert(relid, reader.tuple())
    elif kind == "U":
        relid = reader.uint32()
        marker = reader.byte()
        old = old_kind = None
        if marker in ("K", "O"):
            old, old_kind = reader.tuple(), marker
            marker = reader.byte()
        _expect(marker, "N")
        message = Update(relid, old, old_kind, reader.tuple())
    elif kind == "D":
        relid = reader.uint32()
        old_kind = reader.byte()
        if old_kind not in ("K", "O"):
            raise DecodeError(f"delete without its old key (marker {old_kind!r})")
        message = Delete(relid, reader.tuple(), old_kind)
    elif kind == "T":
        count = reader.int32()
        options = reader.int8()
        message = Truncate(tuple(reader.uint32() for _ in range(count)), options)
    elif kind in ("O", "Y", "M"):
        return Ignored(kind)
    else:
        raise DecodeError(f"unknown message kind {kind!r}")
    reader.done()
    return message


def _expect(marker: str, wanted: str) -> None:
    if marker != wanted:
        raise DecodeError(f"expected tuple marker {wanted!r}, got {marker!r}")


def format_lsn(lsn: int) -> str:
    """PostgreSQL's text of an LSN (``pg_lsn``): two hexadecimal halves, e.g. ``0/16B3748``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """The LSN written as ``pg_lsn`` text; a malformed one raises ``ValueError`` naming it."""
    high, slash, low = text.partition("/")
    if not slash:
        raise ValueError(f"{text!r} is not an LSN (expected e.g. 0/16B3748)")
    return (int(high, 16) << 32) | int(low, 16)
