"""The run's use of the logical replication slot: the day's end, exported as the snapshot; the day's changes.

**The day's end is the snapshot's own point.** A logical slot being created waits
until it can decode consistently, and then exports a snapshot that sees exactly the
transactions committed before its ``consistent_point``. So after the run's tables
are locked (``snapshot.SourceSnapshot.begin``), a slot is created over a replication
connection with ``SNAPSHOT 'export'``, and the run's transaction imports that snapshot
(``SET TRANSACTION SNAPSHOT``): the day's end LSN and the rows every table is read in
agree exactly, whatever commits meanwhile. On the first LOG_BASED run the created
slot is the persistent one (``TAP_POSTGRES_REPLICATION_SLOT``), so its start and the
tables' first full copy agree too; on every later run it is a ``TEMPORARY`` slot of
the run's own, gone when the connection closes. Creating a slot waits for the
transactions running at that moment (which hold a transaction id) to end: a source
transaction open for an hour holds the run an hour (``statement_timeout`` does not
apply to it).

**The day's changes** are read from the persistent slot with
``pg_logical_slot_peek_binary_changes`` up to the day's end: a peek does not move
the slot, so a run that fails before its publish reads them again. The slot is
advanced (``pg_replication_slot_advance``) only to the *previous* day's end, which a
published receipt holds, at the start of the next read: so the latest day can still
be rerun from the log. A slot already past that point (moved by hand, or a receipt
removed) would skip changes: refused in one line.

The replication role (``TAP_POSTGRES_REPLICATION_USER``) does all of this; it never
reads a table. The server's ``wal_level`` is checked at discovery, before anything is
locked (``pipeline.source.log_based.wal_level_problem``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg2
import psycopg2.extras
from psycopg2 import sql

from pipeline.core.errors import PipelineError, TransientPipelineError, first_line
from pipeline.source.log_based import REPLICATION, SLOT_VARIABLE
from tap_postgres_native.log_window import TableChanges, TableName, fold_window
from tap_postgres_native.pgoutput import format_lsn, parse_lsn

_FETCH = 10_000  # messages per round trip of the peek's cursor


class LogSlot:
    """The slot and publication named ``slot``, reached as the replication role of ``config``."""

    def __init__(self, config: Mapping[str, Any], slot: str) -> None:
        user = config.get("replication_user")
        if not user:
            raise PipelineError(f"{REPLICATION}_USER not set: LOG_BASED tables need it (see .env.example)")
        self.slot = slot
        self._params = {
            "host": config["host"],
            "port": config["port"],
            "dbname": config["database"],
            "user": user,
            "password": config.get("replication_password") or "",
            "application_name": "northwind-pipeline-log",
        }
        self._exporting: Any = None  # the replication connection whose snapshot the run imports

    def _connect(self, **extra: Any) -> Any:
        try:
            return psycopg2.connect(**self._params, **extra)
        except psycopg2.OperationalError as exc:
            raise TransientPipelineError(
                f"cannot connect to the source as {REPLICATION}_USER {self._params['user']}: {first_line(exc)}"
            ) from exc

    def confirmed(self, cursor: Any) -> int | None:
        """The slot's confirmed position (None: no slot yet); a slot of another database or plugin is refused."""
        cursor.execute(
            "SELECT confirmed_flush_lsn::text, plugin, database FROM pg_replication_slots WHERE slot_name = %s",
            (self.slot,),
        )
        row = cursor.fetchone()
        if row is None:
            return None
        position, plugin, database = row
        if plugin != "pgoutput" or database != self._params["dbname"]:
            raise PipelineError(
                f"{SLOT_VARIABLE}: slot {self.slot} exists for plugin {plugin} in database {database}, not "
                f"pgoutput in {self._params['dbname']}: name another slot"
            )
        return parse_lsn(position)

    def export_snapshot(self) -> tuple[int, str, bool]:
        """Create the day's slot (module docstring): its consistent point, the exported snapshot, whether persistent.

        The export lasts until ``release`` (the run's transaction must have imported it).
        """
        check = self._connect()
        try:
            with check.cursor() as cursor:
                persistent = self.confirmed(cursor) is None
        finally:
            check.close()
        name = self.slot if persistent else f"{self.slot[:30]}_run_{uuid.uuid4().hex}"
        connection = self._connect(connection_factory=psycopg2.extras.LogicalReplicationConnection)
        try:
            cursor = connection.cursor()
            statement = "CREATE_REPLICATION_SLOT {} " + ("" if persistent else "TEMPORARY ")
            statement += "LOGICAL pgoutput (SNAPSHOT 'export')"
            cursor.execute(sql.SQL(statement).format(sql.Identifier(name)).as_string(connection))
            _, point, snapshot, _ = cursor.fetchone()
        except psycopg2.Error as exc:
            connection.close()
            raise TransientPipelineError(f"creating replication slot {name} failed: {first_line(exc)}") from exc
        self._exporting = connection
        return parse_lsn(point), snapshot, persistent

    def release(self) -> None:
        """Close the exporting connection (a temporary slot goes with it)."""
        if self._exporting is not None:
            self._exporting.close()
            self._exporting = None

    def changes(
        self, start: int | None, end: int, keys: Mapping[TableName, Sequence[str]], publication: str
    ) -> dict[TableName, TableChanges]:
        """Each table's changed keys in ``[start, end)``, after advancing the slot to ``start`` (a published end)."""
        connection = self._connect()
        try:
            with connection:
                cursor = connection.cursor()
                confirmed = self.confirmed(cursor)
                if confirmed is None:
                    raise PipelineError(f"replication slot {self.slot} is gone: LOG_BASED tables need a new first day")
                if start is not None and confirmed > start:
                    raise PipelineError(
                        f"replication slot {self.slot} is at {format_lsn(confirmed)}, past the previous day's end "
                        f"{format_lsn(start)}: the changes between are no longer in it; drop the slot "
                        "(SELECT pg_drop_replication_slot(...)) so that the next run starts the LOG_BASED tables anew"
                    )
                if start is not None and confirmed < start:
                    cursor.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.slot, format_lsn(start)))
                return fold_window(self._peek(connection, end, publication), start, end, keys)
        except psycopg2.Error as exc:
            raise TransientPipelineError(f"reading replication slot {self.slot} failed: {first_line(exc)}") from exc
        finally:
            connection.close()

    def _peek(self, connection: Any, end: int, publication: str) -> Iterator[bytes]:
        """The slot's messages up to ``end``, streamed through a server-side cursor."""
        cursor = connection.cursor(name="pipeline_log_peek")
        cursor.itersize = _FETCH
        cursor.execute(
            "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, NULL, "
            "'proto_version', '1', 'publication_names', %s)",
            (self.slot, format_lsn(end), publication),
        )
        for (data,) in cursor:
            yield bytes(data)
