"""A day's window of the replication log, folded into which keys of each table changed, and how.

Why keys, not the logged values: the window ends exactly where the day's snapshot was
taken (``log_slot``: the snapshot is exported by a slot created at that point), so
the last version of every key changed in the window is the snapshot's row of that
key, or no row when the key was deleted last. Reading the values there (``LogStream``)
gives them in the very text form of a ``FULL_TABLE`` copy (the same casts and session
settings), and also for TOASTed values that an update left unchanged, which the log
does not carry (``pgoutput.UNCHANGED``).

A day's file therefore holds one row per key changed in the day: its net operation
(``insert``: the key did not exist before the window; ``update``: it did and still
does; ``delete``: it does not at the end) and the commit LSN of its last change. A
key updated twice in a day is one ``update``; an update that changes the primary key
is a ``delete`` of the old key and an ``insert`` of the new one.

The window is ``[start, end)`` by commit LSN: a transaction belongs to the day whose
window holds the start of its commit record (``Begin.final_lsn``); the previous day's
``end`` is this day's ``start``, so no transaction falls in two days or none. A
``TRUNCATE`` of a table in the window makes that table's day a full copy from the
snapshot (``TableChanges.truncated``): the log does not say which rows it removed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence

from pipeline.core.errors import PipelineError
from tap_postgres_native.pgoutput import (
    UNCHANGED,
    Begin,
    Commit,
    Delete,
    Insert,
    Relation,
    Truncate,
    Tuple,
    Update,
    decode,
)

Key = tuple[str | None, ...]
TableName = tuple[str, str]


@dataclasses.dataclass
class KeyChange:
    """One key's changes in the window: whether it existed before the window, and its last commit LSN."""

    existed: bool
    lsn: int


@dataclasses.dataclass
class TableChanges:
    """A table's changed keys in the window, in the order of their last change; or ``truncated``."""

    keys: dict[Key, KeyChange] = dataclasses.field(default_factory=dict)
    truncated: bool = False

    def record(self, key: Key, existed: bool, lsn: int) -> None:
        """A change of ``key``: the first change in the window says whether it existed before."""
        earlier = self.keys.pop(key, None)
        self.keys[key] = KeyChange(earlier.existed if earlier else existed, lsn)


class _Transaction:
    """The changes of one transaction, kept until its Begin and Commit say whether it is in the window."""

    def __init__(self, commit_lsn: int) -> None:
        self.commit_lsn = commit_lsn
        self.events: list[tuple[TableName, Key | None, bool]] = []  # (table, key or None for a truncate, existed)


def fold_window(
    messages: Iterable[bytes], start: int | None, end: int, keys: Mapping[TableName, Sequence[str]]
) -> dict[TableName, TableChanges]:
    """Fold pgoutput ``messages`` (a peek of the slot, in order) into each table's changed keys.

    ``keys``: every table of the day read ``LOG_BASED`` (others in the publication are
    ignored), with its primary key's columns. Transactions committed before ``start``
    (an earlier day's, when the slot was not advanced yet) or at or after ``end`` are
    left out.
    """
    result: dict[TableName, TableChanges] = {table: TableChanges() for table in keys}
    relations: dict[int, Relation] = {}
    transaction: _Transaction | None = None
    for data in messages:
        message = decode(data)
        if isinstance(message, Begin):
            transaction = _Transaction(message.final_lsn)
        elif isinstance(message, Relation):
            relations[message.relid] = message
        elif isinstance(message, Commit):
            if transaction is not None and _in_window(transaction.commit_lsn, start, end):
                _apply(transaction, result)
            transaction = None
        elif isinstance(message, Insert | Update | Delete | Truncate):
            if transaction is None:
                raise PipelineError(f"replication log: a {type(message).__name__} outside a transaction")
            transaction.events.extend(_events(message, relations, keys))
    return result


def _in_window(commit_lsn: int, start: int | None, end: int) -> bool:
    """Whether a transaction committed at ``commit_lsn`` belongs to the window ``[start, end)``."""
    return (start is None or start <= commit_lsn) and commit_lsn < end


def _apply(transaction: _Transaction, result: dict[TableName, TableChanges]) -> None:
    for table, key, existed in transaction.events:
        changes = result[table]
        if key is None:
            changes.truncated = True
            changes.keys.clear()
        else:
            changes.record(key, existed, transaction.commit_lsn)


def _events(
    message: Insert | Update | Delete | Truncate,
    relations: Mapping[int, Relation],
    keys: Mapping[TableName, Sequence[str]],
) -> list[tuple[TableName, Key | None, bool]]:
    """The (table, key, existed before) of one change; a truncate has no key."""
    if isinstance(message, Truncate):
        named = [_name(relations, relid) for relid in message.relids]
        return [(table, None, True) for table in named if table in keys]
    relation = relations.get(message.relid)
    if relation is None:
        raise PipelineError(f"replication log: a change of relation {message.relid} before its Relation message")
    table = (relation.schema, relation.name)
    if table not in keys:
        return []
    columns = [column.name for column in relation.columns]
    key_of = _key_reader(table, columns, keys[table])
    if isinstance(message, Insert):
        return [(table, key_of(message.new), False)]
    if isinstance(message, Delete):
        return [(table, key_of(message.old), True)]
    new_key = key_of(message.new, message.old)
    if message.old is not None:
        old_key = key_of(message.old)
        if old_key != new_key:
            return [(table, old_key, True), (table, new_key, False)]
    return [(table, new_key, True)]


def _name(relations: Mapping[int, Relation], relid: int) -> TableName:
    relation = relations.get(relid)
    if relation is None:
        raise PipelineError(f"replication log: a truncate of relation {relid} before its Relation message")
    return (relation.schema, relation.name)


def _key_reader(table: TableName, columns: list[str], key: Sequence[str]) -> Callable[..., Key]:
    """A function reading ``key``'s values from a tuple of the relation's ``columns``."""
    missing = [name for name in key if name not in columns]
    if missing:
        raise PipelineError(
            f"table {table[0]}.{table[1]}: the replication log has no column {', '.join(missing)} of its key"
        )
    positions = [columns.index(name) for name in key]

    def read(values: Tuple, fallback: Tuple | None = None) -> Key:
        picked: list[str | None] = []
        for position in positions:
            value = values[position]
            if value is UNCHANGED and fallback is not None:
                value = fallback[position]
            if not isinstance(value, str | None):
                raise PipelineError(
                    f"table {table[0]}.{table[1]}: a key column's value is not in the replication log "
                    "(an unchanged TOASTed key); give the table a smaller primary key"
                )
            picked.append(value)
        return tuple(picked)

    return read
