"""The extractor's per-table configuration: the ``tables`` setting, one object per source table.

Why one setting keyed by schema, then table: names are data (``a.b`` and ``a-b`` are
table names a source may have), so neither a dotted nor a Meltano-style
``<schema>-<table>`` key could name every table unambiguously; two levels of exact
names can. Each table's value is an object of options::

    {"public": {"audit_log": {"selected": false},
                "orders": {"replication-method": "INCREMENTAL", "replication-key": "order_id"}}}

``selected`` (Meltano's own word) ``false`` leaves the table out: it is not read, not
locked, not checked, and is named in the job's log and the day's receipt.

``replication-method`` and ``replication-key`` (Meltano's own words) choose how a
table is read: ``FULL_TABLE`` (the default: the whole table every day),
``INCREMENTAL`` (the rows whose ``replication-key`` lies in the day's window; the key
is required) or ``LOG_BASED`` (the day's changes from the logical replication slot).
The window's bookmarks live in the day's receipt (``pipeline.days.bookmarks``). Meltano
reads the setting from ``TAP_POSTGRES_TABLES`` as JSON; an empty value (a variable
that is unset) means no per-table options.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pipeline.core.errors import PipelineError

SETTING = "tables"
VARIABLE = "TAP_POSTGRES_TABLES"
# Every option a table's object may hold, with the type of its value.
OPTIONS: dict[str, type] = {
    "selected": bool,
    "replication-method": str,
    "replication-key": str,
    "table-key-properties": list,
}
FULL_TABLE = "FULL_TABLE"
INCREMENTAL = "INCREMENTAL"
LOG_BASED = "LOG_BASED"
METHODS = (FULL_TABLE, INCREMENTAL, LOG_BASED)


def _refused(what: str) -> PipelineError:
    return PipelineError(
        f"tap-postgres setting {SETTING} ({VARIABLE}): {what}; expected e.g. "
        '{"public": {"audit_log": {"selected": false}}}'
    )


class TableSettings:
    """The validated per-table options; a table the setting does not name has the defaults."""

    def __init__(self, value: Any) -> None:
        """Check the whole setting at once, so that a typo fails the run before anything is read."""
        if isinstance(value, str):
            value = _parsed(value)
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise _refused(f"{json.dumps(value)} is not an object of schemas")
        self._options: dict[tuple[str, str], dict[str, Any]] = {}
        for schema, tables in value.items():
            if not isinstance(tables, Mapping):
                raise _refused(f"schema {schema!r} maps to {json.dumps(tables)}, not an object of tables")
            for table, options in tables.items():
                self._options[(schema, table)] = _checked_options(schema, table, options)

    def selected(self, schema: str, table: str) -> bool:
        """Whether the table is extracted (the default) or left out."""
        return self._options.get((schema, table), {}).get("selected", True)

    def method(self, schema: str, table: str) -> str:
        """How the table is read: ``FULL_TABLE`` (the default), ``INCREMENTAL`` or ``LOG_BASED``."""
        return self._options.get((schema, table), {}).get("replication-method", FULL_TABLE)

    def replication_key(self, schema: str, table: str) -> str | None:
        """The column whose growth an ``INCREMENTAL`` table is read by; None for the other methods."""
        return self._options.get((schema, table), {}).get("replication-key")

    def declared_key(self, schema: str, table: str) -> list[str]:
        """The key declared for a table without a primary key (``table-key-properties``, Singer's word); [] if none."""
        return list(self._options.get((schema, table), {}).get("table-key-properties", []))

    def named(self) -> set[tuple[str, str]]:
        """Every (schema, table) the setting names, to tell the user about names the source does not have."""
        return set(self._options)


def leave_out_setting(schema: str, table: str) -> str:
    """The setting's JSON that leaves one table out, for a message that offers it as a fix."""
    return json.dumps({schema: {table: {"selected": False}}}, ensure_ascii=False)


def _parsed(text: str) -> Any:
    """The setting given as JSON text (an environment variable expanded into the config); empty is none."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _refused(f"not JSON ({exc.msg} at character {exc.pos})") from exc


def _checked_options(schema: str, table: str, options: Any) -> dict[str, Any]:
    """One table's options, refusing an unknown option or a value of the wrong type by name."""
    where = f"table {schema!r}.{table!r}"
    if not isinstance(options, Mapping):
        raise _refused(f"{where} maps to {json.dumps(options)}, not an object of options")
    for name, option in options.items():
        expected = OPTIONS.get(name)
        if expected is None:
            raise _refused(f"{where}: unknown option {name!r} (known: {', '.join(sorted(OPTIONS))})")
        if not isinstance(option, expected):
            raise _refused(f"{where}: option {name!r} is {json.dumps(option)}, not a {expected.__name__}")
    method = options.get("replication-method", FULL_TABLE)
    if method not in METHODS:
        raise _refused(f"{where}: replication-method {method!r} is none of {', '.join(METHODS)}")
    key = options.get("replication-key")
    if method == INCREMENTAL and not key:
        raise _refused(f"{where}: replication-method INCREMENTAL needs a replication-key (a column that grows)")
    if key is not None and method != INCREMENTAL:
        raise _refused(f"{where}: replication-key is for replication-method INCREMENTAL, not {method}")
    declared = options.get("table-key-properties")
    if declared is not None:
        if not declared or not all(isinstance(column, str) for column in declared):
            raise _refused(f"{where}: table-key-properties {json.dumps(declared)} is not a list of column names")
        if method != INCREMENTAL:
            raise _refused(
                f"{where}: table-key-properties is for replication-method INCREMENTAL (LOG_BASED needs the source's "
                "primary key: the log names a changed row by it)"
            )
    return dict(options)
