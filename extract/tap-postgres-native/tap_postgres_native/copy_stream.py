r"""A full-table stream that Postgres itself writes as the table's day file, when the day-file settings are set.

Why: through RECORD messages every value is read into Python, made JSON by the tap,
parsed again by the loader and encoded back to CSV text: tens of thousands of rows
per second at best (see docs/performance.md). ``COPY (SELECT ...) TO STDOUT (FORMAT
csv)`` writes the day file's exact form at the speed of the server, in bounded
memory. So with ``data_dir`` (and the other settings of ``pipeline.days.handover``) set,
each table is written once, where target-lfs adopts it without a copy: target-lfs's
header line, then COPY's rows, hashed as they stream past; one BATCH message (encoding
``csv``) hands the file over with its row count and sha256 (``pipeline.days.handover``).
Every table's COPY runs in the run's one snapshot (``snapshot.SourceSnapshot``).

The file is the contract's PostgreSQL CSV text form by construction: NULL unquoted
empty, the empty string ``""``, bytea ``\x`` hex, json as its text, dates ISO.
Booleans are cast to text, since COPY writes a bare boolean as ``t``/``f``; a column
whose analytics type is ``text`` or ``text[]`` instead of its source type (an enum,
a composite, citext...) is cast to it, so the file holds what the analytics column
will. The statement is built from the catalog's exact names with
``psycopg2.sql.Identifier``, never by formatting names into SQL.

Without ``data_dir`` the stream is tap-postgres's own (RECORD messages, each
mapped column cast to its analytics type), which is what a Singer target other than
target-lfs expects; it reads outside the shared snapshot, without its locks and
session settings (``snapshot.py``), so the jobs' guarantees hold in batch mode only.
"""

from __future__ import annotations

import copy
import shutil
import time
import typing as t
from functools import cached_property

import psycopg2
import sqlalchemy as sa
from psycopg2 import sql
from singer_sdk.mapper import SameRecordTransform
from tap_postgres.client import PostgresStream

from pipeline.adapters.singer import CSV_ENCODING, BaseBatchFileEncoding, BatchConfig, csv_batch_config
from pipeline.core.errors import PipelineError, TransientPipelineError, first_line
from pipeline.core.names import table_folder
from pipeline.days.handover import DayFileSettings, Handover, file_uri, tap_file, written_once
from pipeline.days.layout import SOURCE_SCHEMA_KEY, SOURCE_TABLE_KEY
from pipeline.days.pgcsv import header_line
from tap_postgres_native.replication import kept_file, source, window_condition
from tap_postgres_native.snapshot import STATEMENT_TIMEOUT
from tap_postgres_native.table_settings import VARIABLE as TABLES_VARIABLE
from tap_postgres_native.type_mapping import BOOL_OID, TEXT_ARRAY_OID, TEXT_OID

if t.TYPE_CHECKING:
    from pathlib import Path

    from singer_sdk.helpers.types import Context
    from upath import UPath

    from pipeline.days.bookmarks import Window
    from tap_postgres_native.snapshot import SourceSnapshot

# The cast that gives a column the text form of its analytics type; others are copied as they are.
_CASTS = {BOOL_OID: "text", TEXT_OID: "text", TEXT_ARRAY_OID: "text[]"}


def column_cast(prop: t.Mapping[str, t.Any]) -> str | None:
    """The type a column is cast to in the COPY (``text`` or ``text[]``), or None.

    Booleans too: COPY's own form of them is ``t``/``f``.
    """
    oid = prop.get("x-sql-type-oid")
    if oid == BOOL_OID or prop.get("x-source-type") is not None:
        return _CASTS.get(oid)
    return None


class AnalyticsType(sa.types.UserDefinedType):
    """A built-in type named as ``format_type`` printed it, for a CAST in the RECORD-mode query.

    The name is the catalog's own text for a built-in type (``x-sql-type-oid`` below
    16384, by ``type_mapping``), never a name taken from the source's objects.
    """

    cache_ok = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get_col_spec(self, **_: t.Any) -> str:
        """The type's name in the SQL text."""
        return self.name


class CopyStream(PostgresStream):
    """tap-postgres's stream; in batch mode the table is one COPY into one CSV file."""

    @cached_property
    def schema(self) -> dict:
        """The catalog entry's schema exactly as discovery wrote it.

        The SDK's own property round-trips it through its ``Schema`` model, which
        drops every key it does not know: the table's ``x-source-schema`` /
        ``x-source-table`` and each column's ``x-sql-type-oid``, ``x-source-type``...
        """
        return copy.deepcopy(self.catalog_entry["schema"])

    @cached_property
    def day_files(self) -> DayFileSettings | None:
        """Where the tables' day files go (``pipeline.days.handover``); None: RECORD messages."""
        return DayFileSettings.from_config(self.config, "tap-postgres")

    def get_batch_config(self, config: t.Mapping) -> BatchConfig | None:
        """Batch mode, CSV encoding, when the day-file settings are set; else RECORD messages."""
        if self.day_files is None:
            return None
        return csv_batch_config(file_uri(self.day_files.data_dir))

    def build_query(self, context: Context | None) -> sa.sql.Select:
        """tap-postgres's query (RECORD mode), each column whose source type differs cast to its analytics type.

        So the driver returns what it returns for that built-in type: a string for an
        enum, a list for an array of a domain (which it would not parse).
        """
        query = super().build_query(context=context)
        properties = self.schema["properties"]
        columns = []
        for column in query.selected_columns:
            prop = properties.get(column.name, {})
            if prop.get("x-source-type") is not None:
                column = sa.cast(column, AnalyticsType(prop["x-sql-datatype"])).label(column.name)
            columns.append(column)
        return query.with_only_columns(*columns)

    def copy_statement(self) -> sql.Composed:
        """``COPY (SELECT <selected columns, cast where needed> FROM [ONLY] <table>) TO STDOUT (FORMAT csv)``.

        ``ONLY`` for every table but a partitioned one (see ``NativeTypesConnector.source_tables``);
        an incremental table's rows only within the day's window (``replication.window_condition``).
        """
        items = []
        for name, prop in self.get_selected_schema()["properties"].items():
            cast = column_cast(prop)
            if cast is None:
                items.append(sql.Identifier(name))
            else:
                items.append(sql.SQL("{}::" + cast + " AS {}").format(sql.Identifier(name), sql.Identifier(name)))
        key = (self.schema[SOURCE_SCHEMA_KEY], self.schema[SOURCE_TABLE_KEY])
        table = self.connector.source_tables[key]  # type: ignore[attr-defined]
        window = self.connector.windows.get(key)  # type: ignore[attr-defined]
        return sql.SQL("COPY (SELECT {} FROM {}{}) TO STDOUT (FORMAT csv)").format(
            sql.SQL(", ").join(items), source(table), window_condition(window)
        )

    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Write the table's day file once, in the run's snapshot, and hand it over with its rows and sha256.

        Where, and what a failed or killed write leaves: ``pipeline.days.handover``.
        """
        del batch_config  # the place is the day file's (self.day_files), not a batch folder
        if not all(isinstance(stream_map, SameRecordTransform) for stream_map in self.stream_maps):
            raise PipelineError(f"{self.name}: stream maps cannot be applied to CSV batches; unset data_dir")
        settings = t.cast(DayFileSettings, self.day_files)
        table = (self.schema[SOURCE_SCHEMA_KEY], self.schema[SOURCE_TABLE_KEY])
        path = tap_file(settings, table_folder(*table))
        window = self.connector.windows.get(table)  # type: ignore[attr-defined]
        if window is not None and window.kept_file is not None:
            yield CSV_ENCODING, [self._republished(table, window, path).manifest_entry()]
            return
        snapshot: SourceSnapshot = self.connector.snapshot  # type: ignore[attr-defined]
        started = time.perf_counter()
        try:
            with written_once(path) as digest:
                digest.write(header_line(self.get_selected_schema()["properties"]))
                rows = snapshot.copy(table, self.copy_statement(), digest)
                sha256 = digest.sha256()
        except psycopg2.Error as exc:
            raise copy_failure(*table, exc) from exc
        seconds = time.perf_counter() - started
        self.logger.info("Copied %d rows of %s to %s in %.3f s", rows, self.name, path, seconds)
        yield CSV_ENCODING, [Handover(uri=file_uri(path), rows=rows, sha256=sha256).manifest_entry()]

    def _republished(self, table: tuple[str, str], window: Window, path: Path | UPath) -> Handover:
        """The day's kept file written again as this run's day file (a past day's rerun: ``pipeline.days.bookmarks``).

        Its rows are the count its receipt recorded; its header must be the stream's columns (``kept_file``).
        """
        columns = list(self.get_selected_schema()["properties"])
        kept = kept_file(self.config, window, columns, f"{table[0]}.{table[1]}")
        with kept.open("rb") as published, written_once(path) as digest:  # the kept file may be an object
            shutil.copyfileobj(published, digest)
            sha256 = digest.sha256()
        self.logger.info("Republished the kept day file of %s (a rerun of a past day)", self.name)
        return Handover(uri=file_uri(path), rows=t.cast(int, window.kept_rows), sha256=sha256)


# Worth a retry: a lost connection, a table changed meanwhile, a statement stopped by a time limit.
_TRANSIENT = (
    psycopg2.OperationalError,
    psycopg2.errors.UndefinedTable,
    psycopg2.errors.UndefinedColumn,
    psycopg2.errors.QueryCanceled,
    psycopg2.errors.LockNotAvailable,
)


# Text that cannot be sent as UTF-8: not valid in a SQL_ASCII database, or without a UTF-8 equivalent.
_NOT_UTF8 = (psycopg2.errors.CharacterNotInRepertoire, psycopg2.errors.UntranslatableCharacter)


def copy_failure(schema: str, table: str, exc: psycopg2.Error) -> PipelineError:
    """One line for a COPY that failed, classed transient when a retry may succeed."""
    reason = first_line(exc)
    name = f"{schema}.{table}"
    if isinstance(exc, psycopg2.errors.QueryCanceled):
        reason += f" (statement_timeout, {STATEMENT_TIMEOUT.variable})"
    if isinstance(exc, _NOT_UTF8):
        reason += f"; correct the text at the source, or leave the table out ({TABLES_VARIABLE})"
    if isinstance(exc, _TRANSIENT):
        return TransientPipelineError(f"reading table {name!r} failed: {reason}; run the job again")
    return PipelineError(f"reading table {name!r} failed: {reason}")
