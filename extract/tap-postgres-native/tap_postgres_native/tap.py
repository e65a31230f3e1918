"""The tap: tap-postgres whose discovery names tables exactly and types columns from pg_catalog.

Its connector also holds the run's one snapshot (``snapshot.SourceSnapshot``) that
every table's COPY reads in.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from functools import cached_property
from typing import Any, ClassVar

import sqlalchemy
from singer_sdk import Stream
from singer_sdk import typing as th
from singer_sdk.helpers._catalog import get_selected_schema
from tap_postgres.client import PostgresConnector, PostgresLogBasedStream
from tap_postgres.tap import TapPostgres

from pipeline.errors import PipelineError, connection_failure, first_line, run_plugin_cli
from tap_postgres_native.copy_stream import CopyStream
from tap_postgres_native.native_types import (
    analytics_type_pairs,
    entry_schema_name,
    native_entries,
    schema_problems,
    table_problems,
)
from tap_postgres_native.snapshot import SourceSnapshot
from tap_postgres_native.source_catalog import existing_schemas, format_types, quoted_user, read_tables, read_types


class NativeTypesConnector(PostgresConnector):
    """Discovers base tables only, named exactly, each column with its analytics type; holds the run's snapshot."""

    @cached_property
    def snapshot(self) -> SourceSnapshot:
        """The one transaction every table's COPY of this run reads in."""
        return SourceSnapshot(self._engine)

    @cached_property
    def plain_tables(self) -> set[tuple[str, str]]:
        """(schema, table) of the discovered tables that are not partitioned: each is read ``ONLY``.

        Without ``ONLY`` a table that others inherit from (``INHERITS``) would also
        yield their rows, which are extracted with their own tables; a partitioned
        table's rows are all in its partitions, so it is read without.
        """
        return set()

    def discover_catalog_entries(
        self,
        *,
        exclude_schemas: Sequence[str] = (),
        reflect_indices: bool = True,
    ) -> list[dict[str, Any]]:
        """Tap-postgres's entries, filtered to base tables and annotated from pg_catalog.

        Every table or column that cannot be extracted is printed on a line of its own
        with its fix, and then the run fails, before anything is read.
        """
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
            for table in tables.values():
                problems.extend(table_problems(table, user))
            if problems:
                # One line each: the failure report that follows keeps a single line.
                for problem in problems:
                    print(f"tap-postgres-native: {problem}", file=sys.stderr)
                raise UnextractableSourceError(len(problems))
            self.plain_tables.update(key for key, table in tables.items() if not table.partitioned)
            types = read_types(connection, {c.type_oid for table in tables.values() for c in table.columns.values()})
            type_names = format_types(connection, analytics_type_pairs(tables, types))
        return native_entries(entries, tables, types, type_names)


class UnextractableSourceError(PipelineError):
    """Schemas, tables or columns that cannot be extracted, already printed one per line; this is the summary."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"{count} source schema(s), table(s) or column(s) cannot be extracted "
            "(each listed above with its fix); "
            "nothing was extracted and the job publishes nothing"
        )


class TapPostgresNative(TapPostgres):
    """tap-postgres whose discovered schemas name each column's PostgreSQL type."""

    name = "tap-postgres-native"
    package_name = "tap-postgres-native"
    config_jsonschema: ClassVar[dict] = {
        **TapPostgres.config_jsonschema,
        "properties": {
            **TapPostgres.config_jsonschema["properties"],
            **th.Property(
                "csv_batch_dir",
                th.StringType,
                description=(
                    "Folder for CSV batch files (relative: to the Meltano project root). When set, each "
                    "full-table stream is written there by COPY and emitted as a BATCH message (encoding csv)."
                ),
            ).to_dict(),
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
            schema = get_selected_schema(name, entry["schema"], selection)
            self.mapper.register_raw_stream_schema(name, schema, entry.get("key_properties") or [])

    def sync_all(self) -> None:
        """Sync every selected stream, all tables read in one snapshot, which is ended afterwards."""
        try:
            super().sync_all()
        finally:
            self.connector.snapshot.close()

    def discover_streams(self) -> Sequence[Stream]:
        """tap-postgres's streams (as its own method builds them), full-table ones able to COPY into CSV batches."""
        connector = self.connector  # also sets connection_parameters, which log-based streams need
        return [
            PostgresLogBasedStream(self, entry, connection_parameters=self.connection_parameters, connector=connector)
            if entry["replication_method"] == "LOG_BASED"
            else CopyStream(self, entry, connector=connector)
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
