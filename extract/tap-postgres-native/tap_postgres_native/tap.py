"""The tap: tap-postgres whose discovery names tables exactly and types columns from pg_catalog.

Its connector also holds the run's one snapshot (``snapshot.SourceSnapshot``) that
every table's COPY reads in.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Sequence
from functools import cached_property
from typing import Any, ClassVar

import sqlalchemy
from singer_sdk import Stream
from singer_sdk import typing as th
from tap_postgres.client import PostgresConnector
from tap_postgres.tap import TapPostgres

from pipeline.adapters.singer import selected_schema
from pipeline.core.errors import PipelineError, connection_failure, first_line, run_plugin_cli
from pipeline.days.bookmarks import Window
from pipeline.days.handover import SETTINGS as DAY_FILE_SETTINGS
from pipeline.days.layout import SOURCE_SCHEMA_KEY, SOURCE_TABLE_KEY
from pipeline.source.log_based import wal_level_problem
from tap_postgres_native.copy_stream import CopyStream
from tap_postgres_native.left_out import LeftOutTable, left_out_message, left_out_tables
from tap_postgres_native.log_day import begin_log_day, reads_log
from tap_postgres_native.log_stream import LogStream, add_log_columns
from tap_postgres_native.log_window import TableChanges
from tap_postgres_native.native_types import (
    analytics_type_pairs,
    entry_schema_name,
    native_entries,
    schema_problems,
    table_problems,
)
from tap_postgres_native.replication import (
    RECEIPT_SETTINGS,
    bookmarks_message,
    end_query,
    plan_windows,
    replication_problems,
    with_end,
)
from tap_postgres_native.snapshot import LIMITS, SourceSnapshot
from tap_postgres_native.source_catalog import (
    SourceTable,
    existing_schemas,
    format_types,
    quoted_user,
    read_skipped_tables,
    read_tables,
    read_types,
)
from tap_postgres_native.table_settings import FULL_TABLE, LOG_BASED, TableSettings
from tap_postgres_native.table_settings import SETTING as TABLES_SETTING
from tap_postgres_native.unextractable import refuse


class NativeTypesConnector(PostgresConnector):
    """Discovers base tables only, named exactly, each column with its analytics type; holds the run's snapshot."""

    @cached_property
    def snapshot(self) -> SourceSnapshot:
        """The one transaction every table's COPY of this run reads in."""
        return SourceSnapshot(self._engine, self.config)

    @cached_property
    def source_tables(self) -> dict[tuple[str, str], SourceTable]:
        """(schema, table) -> the discovered table as pg_catalog described it, for the locks and the COPY.

        A table that others inherit from (``INHERITS``) is read ``ONLY``: without it, it
        would also yield their rows, which are extracted with their own tables; a
        partitioned table's rows are all in its partitions, so it is read without.
        """
        return {}

    @cached_property
    def table_settings(self) -> TableSettings:
        """The validated per-table options (setting ``tables``)."""
        return TableSettings(self.config.get(TABLES_SETTING))

    @cached_property
    def windows(self) -> dict[tuple[str, str], Window]:
        """(schema, table) -> the day's window of each table not read whole (``replication``), ends included."""
        return {}

    @cached_property
    def log_changes(self) -> dict[tuple[str, str], TableChanges]:
        """(schema, table) -> the changed keys of each LOG_BASED table read from the log (not whole) this run."""
        return {}

    @cached_property
    def left_out(self) -> list[LeftOutTable]:
        """The tables of the selected schemas that the run does not extract, each with why."""
        return []

    def discover_catalog_entries(
        self,
        *,
        exclude_schemas: Sequence[str] = (),
        reflect_indices: bool = True,
    ) -> list[dict[str, Any]]:
        """Tap-postgres's entries, filtered to base tables not left out, and annotated from pg_catalog.

        Every table or column that cannot be extracted is printed on a line of its own
        with its fix, and then the run fails, before anything is read. Every table that
        is not extracted (left out by the ``tables`` setting, a partition of a parent
        in a schema not extracted, a foreign table) is named on a line of its own.
        """
        settings = self.table_settings
        with warnings.catch_warnings():
            # SQLAlchemy warns about every type it does not know (enums of other
            # schemas, composites...); the types are decided from pg_catalog instead.
            warnings.simplefilter("ignore", sqlalchemy.exc.SAWarning)
            entries = super().discover_catalog_entries(exclude_schemas=exclude_schemas, reflect_indices=reflect_indices)
        schemas = sorted(
            set(self.config.get("filter_schemas") or ()) | {s for e in entries if (s := entry_schema_name(e))}
        )
        if not schemas:
            return []
        with self._connect() as connection, connection.begin():
            user = quoted_user(connection)
            problems = list(schema_problems(schemas, existing_schemas(connection, schemas), user))
            tables = read_tables(connection, schemas)
            self.left_out[:] = left_out_tables(tables, settings, read_skipped_tables(connection, schemas))
            for table in self.left_out:
                tables.pop((table.schema, table.name), None)
            for table in tables.values():
                problems.extend(table_problems(table, user))
            if any(settings.method(schema, name) == LOG_BASED for schema, name in tables):
                where = f"the source server {self.config.get('host')}:{self.config.get('port')}"
                level = connection.exec_driver_sql("SELECT current_setting('wal_level')").scalar()
                problems.extend(problem for problem in [wal_level_problem(str(level), where)] if problem)
            refuse(problems)
            self.source_tables.update(tables)
            types = read_types(connection, {c.type_oid for table in tables.values() for c in table.columns.values()})
            type_names = format_types(connection, analytics_type_pairs(tables, types))
        for table in self.left_out:
            print(f"tap-postgres-native: table {table.quoted} left out: {table.reason}", file=sys.stderr)
        for schema, name in sorted(settings.named() - set(tables) - {(t.schema, t.name) for t in self.left_out}):
            print(
                f"tap-postgres-native: setting {TABLES_SETTING} names table {schema!r}.{name!r}, "
                "which the selected schemas do not have",
                file=sys.stderr,
            )
        kept = [entry for entry in entries if (entry_schema_name(entry) or "", entry["table_name"]) in tables]
        for entry in kept:
            declared = settings.declared_key(entry_schema_name(entry) or "", entry["table_name"])
            if declared and not entry.get("key_properties"):
                declare_key(entry, declared)
        keys = {(entry_schema_name(e) or "", e["table_name"]): e.get("key_properties") or [] for e in kept}
        refuse(replication_problems(tables, keys, settings))
        entries = native_entries(kept, tables, types, type_names)
        for entry in entries:
            if settings.method(entry_schema_name(entry) or "", entry["table_name"]) == LOG_BASED:
                add_log_columns(entry)
        return entries


def declare_key(entry: dict[str, Any], columns: list[str]) -> None:
    """Make a key declared for a table without a primary key (``TAP_POSTGRES_TABLES``) its stream's key.

    Where the SDK reads it (the root metadata's ``table-key-properties``) and where the target does.
    """
    entry["key_properties"] = columns
    for item in entry.get("metadata", []):
        if item.get("breadcrumb") in ([], ()):
            item.setdefault("metadata", {})["table-key-properties"] = columns


class TapPostgresNative(TapPostgres):
    """tap-postgres whose discovered schemas name each column's PostgreSQL type."""

    name = "tap-postgres-native"
    package_name = "tap-postgres-native"
    config_jsonschema: ClassVar[dict] = {
        **TapPostgres.config_jsonschema,
        "properties": {
            **TapPostgres.config_jsonschema["properties"],
            **{
                name: th.Property(name, th.StringType, description=description).to_dict()[name]
                for name, description in DAY_FILE_SETTINGS.items()
            },
            **th.Property(
                TABLES_SETTING,
                th.CustomType({"type": ["object", "string", "null"]}),
                description=(
                    "Per-table options, keyed by schema, then table (exact names): "
                    '{"public": {"audit_log": {"selected": false}}} leaves that table out; '
                    '{"replication-method": "INCREMENTAL", "replication-key": "updated_at"} reads its changes.'
                ),
            ).to_dict(),
            **{
                name: th.Property(
                    name,
                    th.StringType,
                    description=f"The job's {name} (DATA_DIR, PIPELINE_DATE, the job's name): where its receipts "
                    "are, whose bookmarks start a table's window; needed only for tables not read FULL_TABLE.",
                ).to_dict()[name]
                for name in RECEIPT_SETTINGS
            },
            **th.Property(
                "replication_user",
                th.StringType,
                description="The role that reads LOG_BASED tables' slot (REPLICATION; make setup creates it).",
            ).to_dict(),
            **th.Property("replication_password", th.StringType, secret=True).to_dict(),
            **th.Property(
                "replication_slot",
                th.StringType,
                description="The logical replication slot and publication of LOG_BASED tables (northwind_pipeline).",
            ).to_dict(),
            **{
                limit.parameter: th.Property(
                    limit.parameter,
                    th.StringType,
                    description=f"The source session's {limit.parameter} (a duration; default {limit.default}).",
                ).to_dict()[limit.parameter]
                for limit in LIMITS
            },
        },
    }

    @cached_property
    def connector(self) -> NativeTypesConnector:  # type: ignore[override]
        """The same connection as tap-postgres's connector, with native-type discovery.

        The parent property is evaluated first because it also resolves the connection
        parameters (and opens the SSH tunnel when one is configured).
        """
        _ = super().connector
        return NativeTypesConnector.from_connection_parameters(
            config=self.config,
            connection_parameters=self.connection_parameters,
        )

    def setup_mapper(self) -> None:
        """The SDK's mapper, given each stream's schema as discovery wrote it.

        The SDK registers schemas from its ``Catalog`` model, which drops the keys it
        does not know (``x-source-table``, ``x-sql-type-oid``...); the SCHEMA messages
        must carry them, so each stream is registered again from the raw catalog.
        """
        super().setup_mapper()
        catalog = self.catalog
        for entry in self.catalog_dict["streams"]:
            name = entry.get("stream") or entry["tap_stream_id"]
            selection = catalog.get_stream(entry["tap_stream_id"]).metadata.resolve_selection()
            schema = selected_schema(name, entry["schema"], selection)
            self.mapper.register_raw_stream_schema(name, schema, entry.get("key_properties") or [])

    def sync_all(self) -> None:
        """Sync every selected stream; with the day-file settings all tables are locked and read in one snapshot.

        The tables left out are sent first, as a ``LEFT_OUT`` message that target-lfs
        records in the day's receipt (with the day-file settings only: it is target-lfs's
        message). The windows of tables not read whole are planned from the job's receipts
        before the snapshot (a day out of order fails before any lock), their ends read in it.
        """
        connector = self.connector
        if not self.config.get("data_dir"):
            settings = connector.table_settings
            if any(settings.method(t.schema, t.name) != FULL_TABLE for t in connector.source_tables.values()):
                raise PipelineError("tap-postgres: a table read incrementally needs the day-file settings (data_dir)")
            super().sync_all()
            return
        print(left_out_message(connector.left_out), flush=True)
        selected = [
            connector.source_tables[(stream.schema[SOURCE_SCHEMA_KEY], stream.schema[SOURCE_TABLE_KEY])]
            for stream in self.streams.values()
            if stream.selected
        ]
        windows = plan_windows(self.config, selected, connector.table_settings)
        try:
            if any(reads_log(window) for window in windows.values()):
                self._begin_log_day(windows, selected)
            else:
                connector.snapshot.begin(selected)
            if windows:
                self._read_ends(windows)
            super().sync_all()
        finally:
            connector.snapshot.close()

    def _begin_log_day(self, windows: dict[tuple[str, str], Window], selected: list[SourceTable]) -> None:
        """Begin the snapshot where the slot exports it, the LOG_BASED windows' ends and changes read (``log_day``).

        Its seconds (with the snapshot's locks and checks) are logged: the benchmark's data
        phase of a LOG_BASED table includes them (``bench/log_changes.py``).
        """
        connector = self.connector
        primary_keys = {
            (stream.schema[SOURCE_SCHEMA_KEY], stream.schema[SOURCE_TABLE_KEY]): list(stream.primary_keys or [])
            for stream in self.streams.values()
        }
        started = time.perf_counter()
        connector.log_changes.update(begin_log_day(connector.snapshot, selected, windows, primary_keys, self.config))
        seconds = time.perf_counter() - started
        self.logger.info("Read the LOG_BASED changes (slot, snapshot, log) in %.3f s", seconds)

    def _read_ends(self, windows: dict[tuple[str, str], Window]) -> None:
        """Read each window's end in the snapshot (a kept file's is recorded), then send them as ``BOOKMARKS``.

        Its seconds are logged: the benchmark's data phase of an INCREMENTAL table includes them.
        """
        connector = self.connector
        started = time.perf_counter()
        for key, window in windows.items():
            if window.end is None and window.kept_file is None:
                end = connector.snapshot.value(key, end_query(connector.source_tables[key], window))
                window = with_end(window, end)
            connector.windows[key] = window
        seconds = time.perf_counter() - started
        self.logger.info("Read the end bookmarks of %d tables in %.3f s", len(windows), seconds)
        print(bookmarks_message(connector.windows), flush=True)

    def discover_streams(self) -> Sequence[Stream]:
        """One stream per table, able to COPY into CSV batches; a LOG_BASED table's from the day's changed keys.

        Never tap-postgres's own log-based stream (wal2json, one bookmark per stream in
        Meltano's state): LOG_BASED is ``log_stream`` over ``pgoutput`` (``log_slot``).
        """
        connector = self.connector
        settings = connector.table_settings
        return [
            (
                LogStream
                if settings.method(entry_schema_name(entry) or "", entry["table_name"]) == LOG_BASED
                else CopyStream
            )(self, entry, connector=connector)
            for entry in self.catalog_dict["streams"]
        ]


def _cli() -> None:
    """The SDK's command line, with a failed connection to the source classed (``connection_failure``)."""
    try:
        TapPostgresNative.cli()
    except sqlalchemy.exc.OperationalError as exc:
        raise connection_failure(f"cannot reach the source database: {first_line(exc.orig)}") from exc


def main() -> None:
    """Run the tap; an unreachable source ends it with one line on stderr, not a traceback."""
    run_plugin_cli("tap-postgres-native", _cli)
