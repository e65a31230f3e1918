"""The tap: tap-postgres with a connector whose discovery adds the native column types."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any, ClassVar

import sqlalchemy
from singer_sdk import Stream
from singer_sdk import typing as th
from singer_sdk.helpers._catalog import get_selected_schema
from tap_postgres.client import PostgresConnector, PostgresLogBasedStream
from tap_postgres.tap import TapPostgres

from pipeline.errors import PipelineError, run_plugin_cli
from tap_postgres_native.copy_stream import CopyStream
from tap_postgres_native.native_types import entry_schema_name, native_entries, read_column_types


class NativeTypesConnector(PostgresConnector):
    """Discovers base tables only, each column carrying ``x-sql-datatype``."""

    def discover_catalog_entries(
        self,
        *,
        exclude_schemas: Sequence[str] = (),
        reflect_indices: bool = True,
    ) -> list[dict[str, Any]]:
        """Tap-postgres's entries, filtered to base tables and annotated from pg_catalog."""
        entries = super().discover_catalog_entries(exclude_schemas=exclude_schemas, reflect_indices=reflect_indices)
        schemas = sorted({name for entry in entries if (name := entry_schema_name(entry))})
        if not schemas:
            return []
        with self._connect() as connection:
            types = read_column_types(connection, schemas)
        return native_entries(entries, types)


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
    """The SDK's command line, with an unreachable source turned into a ``PipelineError``."""
    try:
        TapPostgresNative.cli()
    except sqlalchemy.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0]
        raise PipelineError(f"cannot reach the source database: {reason}") from exc


def main() -> None:
    """Run the tap; an unreachable source ends it with one line on stderr, not a traceback."""
    run_plugin_cli("tap-postgres-native", _cli)
