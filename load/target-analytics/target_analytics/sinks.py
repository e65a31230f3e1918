r"""The sink: target-postgres's ``PostgresSink``, loading one day file by COPY into a fresh table.

Why target-postgres is the base: it is the project's Postgres loader (the stack is
MeltanoLabs tap-postgres, target-csv and target-postgres, each extended in-repo), so
this sink keeps its stream handling, settings and SDK plumbing and replaces only what
a day load must do differently:

- identity: the table is named from the ``x-pipeline-table`` entry of the SCHEMA
  message (source, source schema, exact table name, its file's key, sha256 and
  manifest row count, written by tap-lfs), never from the stream name, which the SDK
  splits on ``-`` (``table_name``, ``schema_name``);
- ``setup``: instead of target-postgres's ``prepare_schema``/``prepare_table``
  (SQLAlchemy DDL in ``default_target_schema``), the column types are resolved by the
  analytics database from ``format_type(oid, typmod)``, or for an earlier day the
  published table's (``target_analytics.columns``);
  refusals are collected, one line each;
- rows: RECORD messages are refused in one line and ``process_batch`` does nothing (no
  temp table, no upsert); each table arrives as one ``csv`` BATCH file;
- ``process_batch_files``: the table is created in the load's own schema with
  ``psycopg.sql.Identifier`` for every name, gets the day column (defaulting to, and
  checked to be, the day: attaching it as the day's partition then needs no scan), the
  file is COPYed in as it is (an earlier day's migrated columns are then converted),
  then the source's key plus the day column becomes the
  primary key (building an index once is faster than growing it row by row), and the
  counts go into the bookkeeping table, all in one transaction.

So target-postgres's own table creation, name conforming and SQLAlchemy DDL never run
for these streams, and no name is ever changed on its way into the database.

The files are PostgreSQL CSV text (NULL unquoted, empty string quoted, bytea as
``\x`` hex), so ``COPY ... (FORMAT csv, HEADER MATCH)`` reads every value back
exactly, checks the header against the columns, and is the fastest way in.
"""

from __future__ import annotations

import csv
import hashlib
import time
import typing as t
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.abc import Buffer
from psycopg.copy import LibpqWriter
from psycopg.generators import copy_to
from target_postgres.connector import PostgresConnector
from target_postgres.sinks import PostgresSink

from pipeline.adapters.singer import BaseBatchFileEncoding
from pipeline.core.crashpoints import pause_point
from pipeline.core.errors import PipelineError, TransientPipelineError, first_line, first_text_line
from pipeline.core.files import batch_file_path
from pipeline.core.names import analytics_schema
from pipeline.core.store import OBJECT_STORE_SCHEMES, is_object_store, open_path, scheme_of
from pipeline.days.layout import TABLE_IDENTITY_KEY
from pipeline.warehouse.bookkeeping import is_earlier_day, record_load
from pipeline.warehouse.loads import DAY_COLUMN, alter_column_type, table_columns
from pipeline.warehouse.results import PART_BYTES
from pipeline.warehouse.widening import ColumnType
from target_analytics.columns import PublishedTable, resolve_columns

if t.TYPE_CHECKING:
    from target_analytics.target import TargetAnalytics

_BLOCK = 1 << 20
# psycopg's own largest piece for one libpq call (a larger one can make libpq loop, psycopg #255).
_CHUNK = 128 << 10


class FlushingWriter(LibpqWriter):
    """psycopg's COPY writer, except that each piece is flushed to the server before the next one is read.

    WHY: on Linux psycopg leaves written COPY data in libpq's output buffer (it flushes
    each write only on macOS), and libpq, in non-blocking mode, grows that buffer
    whenever the file is read faster than the server parses it. target-analytics' peak
    RSS then grew with the day's size (measured: 101 MB at 1.0M rows, 137 MB at 3.1M).
    Flushing waits for the socket, so at most one piece is ever buffered.
    """

    def write(self, data: Buffer) -> None:
        """Send ``data`` in pieces of ``_CHUNK``, each flushed before the next."""
        view = memoryview(data)
        for start in range(0, len(view), _CHUNK):
            self.connection.wait(copy_to(self._pgconn, view[start : start + _CHUNK], flush=True))


def _batch_file(uri: str) -> Path:
    """The file or object a BATCH message names: a local ``file://`` path, or an object by its ``s3://`` URL."""
    if scheme_of(uri) in OBJECT_STORE_SCHEMES:
        return open_path(uri, "the BATCH message's file")
    return batch_file_path(uri)


def _label(schema: str, table: str) -> str:
    """A table's name for messages: both parts as repr, so any character shows."""
    return f"{schema!r}.{table!r}"


class LoadSink(PostgresSink):
    """Loads one table of the day into the load's schema for its analytics schema."""

    def __init__(
        self,
        target: TargetAnalytics,
        stream_name: str,
        schema: dict,
        key_properties: t.Any,
        connector: PostgresConnector | None = None,
    ) -> None:
        identity = schema.get(TABLE_IDENTITY_KEY)
        if not isinstance(identity, dict):
            raise PipelineError(
                f"stream {stream_name!r} has no {TABLE_IDENTITY_KEY} in its SCHEMA message; use tap-lfs"
            )
        self.target = target
        self.identity = identity
        self.label = _label(self.schema_name, self.table_name)
        self.column_types: dict[str, str] = {}
        self.converted_columns: dict[str, ColumnType] = {}
        self.loaded = False
        super().__init__(target, stream_name, schema, key_properties, connector=connector)

    @property
    def schema_name(self) -> str:
        """The table's analytics schema (``postgres``, ``postgres__S``, ``csv``), from its identity.

        The table itself is created in the load's own schema for it (``TargetAnalytics.load_schema_for``).
        """
        return analytics_schema(self.identity["source"], self.identity["source_schema"])

    @property
    def table_name(self) -> str:
        """The source table's exact name, from its identity (not split out of the stream name)."""
        return str(self.identity["table"])

    def setup(self) -> None:
        """Resolve the column types before any row moves; a refusal is collected, not raised.

        Replaces target-postgres's ``setup``, which would create a schema and a table
        through SQLAlchemy now; here the table is created with the COPY, in its transaction.
        """
        conn = self.target.connection
        published = None
        if is_earlier_day(conn, self.target.day, self.schema_name, self.table_name):
            # A rerun or backfill loads into the types the table has moved on to since.
            columns = table_columns(conn, self.schema_name, self.table_name)
            published = PublishedTable(self.schema_name, self.table_name, columns)
        resolved = resolve_columns(conn, self.label, self.schema["properties"], published)
        self.target.problems.extend(resolved.problems)
        if unknown := [k for k in self.key_properties if k not in self.schema["properties"]]:
            self.target.problems.append(f"table {self.label}: key columns {unknown} are not among its columns")
        self.column_types = resolved.types
        self.converted_columns = resolved.converted

    def process_record(self, record: dict, context: dict) -> None:
        """Not supported: tap-lfs hands every table over as its file."""
        raise PipelineError(f"target-analytics loads {self.stream_name} from BATCH files only, never RECORD messages")

    def process_batch(self, context: dict) -> None:
        """Nothing to do: the COPY happens when the BATCH message arrives (no temp table, no upsert)."""

    def _header(self, path: Path) -> list[str]:
        """The file's columns, in its order; each must be a property of the stream's schema."""
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), [])
        if unknown := [name for name in header if name not in self.schema["properties"]]:
            raise PipelineError(f"{path}: header has columns not in the schema of table {self.label}: {unknown}")
        return header

    def process_batch_files(self, encoding: BaseBatchFileEncoding, files: t.Sequence[str]) -> None:
        """Create the table and COPY its one ``csv`` file into it, in one transaction."""
        if encoding.format != "csv" or len(files) != 1 or self.loaded:
            raise PipelineError(f"table {self.label}: expected exactly one csv BATCH file from tap-lfs")
        self.loaded = True
        if self.target.problems:
            return  # refused already: the job fails at the end, after every problem is listed
        path = _batch_file(files[0])
        header = self._header(path)
        started = time.perf_counter()
        try:
            rows = self._load(path, header)
        except psycopg.OperationalError as exc:
            raise TransientPipelineError(f"table {self.label}: the analytics database went away: {exc}") from exc
        except psycopg.Error as exc:
            where = f" ({first_text_line(exc.diag.context, '')})" if exc.diag.context else ""
            raise PipelineError(f"{path} cannot be loaded into table {self.label}: {first_line(exc)}{where}") from exc
        self.record_counter_metric.increment(rows)
        # The load's own time (COPY, key built): the bench's data phase (bench/changes.py) reads it here.
        self.logger.info(
            "Copied %d rows of %s into %s in %.3f s", rows, path, self.label, time.perf_counter() - started
        )

    def _load(self, path: Path, header: list[str]) -> int:
        """Create the table, COPY, convert migrated columns, add the key, record the counts: one transaction."""
        conn = self.target.connection
        with conn.transaction():
            schema = self.target.load_schema_for(self.schema_name)
            table = sql.Identifier(schema, self.table_name)
            self._create(table)
            columns = sql.SQL(", ").join(map(sql.Identifier, header))
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, HEADER MATCH)").format(table, columns)
            with conn.cursor() as cursor:
                digest = self._copy(path, cursor, statement)
                rows = cursor.rowcount
            if digest is not None and digest != self.identity["sha256"]:
                raise PipelineError(
                    f"{path} has sha256 {digest}, but its receipt says {self.identity['sha256']}: the object "
                    "changed after step 1 wrote it; nothing of the day was published; rerun step 1 for this day"
                )
            for name, to in self.converted_columns.items():
                alter_column_type(conn, (schema, self.table_name), name, to)
            if self.key_properties:
                key = sql.SQL(", ").join(map(sql.Identifier, [*self.key_properties, DAY_COLUMN]))
                conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(table, key))
            self._record(schema, rows)
        pause_point("extract")
        return rows

    def _copy(self, path: Path, cursor: psycopg.Cursor, statement: sql.Composed) -> str | None:
        """Stream the file into ``statement``'s COPY; on object storage, return the sha256 of what was sent.

        tap-lfs checks a local file before handing it over; an object is checked here,
        in the one read that loads it, and the load's transaction rolls back when it
        differs. Objects are read in parts of ``PART_BYTES`` (s3fs would read ahead 50 MiB).
        """
        on_store = is_object_store(path)
        digest = hashlib.sha256() if on_store else None
        options = {"block_size": PART_BYTES} if on_store else {}
        with path.open("rb", **options) as source, cursor.copy(statement, writer=FlushingWriter(cursor)) as copy:
            while block := source.read(_BLOCK):
                copy.write(block)
                if digest is not None:
                    digest.update(block)
        return None if digest is None else digest.hexdigest()

    def _create(self, table: sql.Identifier) -> None:
        """The day column first (always the day), then the file's columns in the source's order."""
        day = sql.Literal(self.target.day)
        definitions = [
            sql.SQL("{} date NOT NULL DEFAULT {} CHECK ({} = {})").format(
                sql.Identifier(DAY_COLUMN), day, sql.Identifier(DAY_COLUMN), day
            )
        ]
        definitions += [
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type))
            for name, sql_type in self.column_types.items()
        ]
        self.target.connection.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(definitions)))

    def _record(self, schema: str, rows: int) -> None:
        """The table's counts in the bookkeeping table, for the publish step's reconciliation."""
        record_load(
            self.target.connection,
            day=self.target.day,
            load_id=self.target.load_id,
            schema_name=self.schema_name,
            table_name=self.table_name,
            load_schema=schema,
            source=self.identity["source"],
            source_schema=self.identity["source_schema"],
            file_key=self.identity["key"],
            file_sha256=self.identity["sha256"],
            manifest_rows=self.identity["rows"],
            loaded_rows=rows,
        )
