"""The tap: the ``files`` setting, one stream per file, and a clean exit on bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from singer_sdk import Tap
from singer_sdk import typing as th

from tap_typed_csv.errors import TypedCSVError, exit_on_error
from tap_typed_csv.source import source_from_config
from tap_typed_csv.streams import TypedCSVStream

_FILE = th.ObjectType(
    th.Property("stream", th.StringType, required=True, description="The stream name."),
    th.Property("path", th.StringType, required=True, description="The CSV file, relative to the working directory."),
    th.Property("schema", th.StringType, required=True, description="Its JSON Schema file, likewise relative."),
    th.Property("key_properties", th.ArrayType(th.StringType), description="The stream's primary key columns."),
    additional_properties=False,
)


class TapTypedCSV(Tap):
    """CSV files, each typed and checked against its declared JSON Schema."""

    name = "tap-typed-csv"
    config_jsonschema = th.PropertiesList(
        th.Property("files", th.ArrayType(_FILE), required=True, description="One entry per stream."),
        th.Property(
            "base_dir",
            th.StringType,
            description="Folder that relative paths in files[] start from; default: the working directory.",
        ),
        th.Property(
            "csv_batch_dir",
            th.StringType,
            description=(
                "Folder for batch files (relative: to base_dir). When set, each file is checked into one "
                "PostgreSQL-CSV file there and sent as a BATCH message (encoding csv) instead of RECORDs."
            ),
        ),
    ).to_dict()

    def discover_streams(self) -> list[TypedCSVStream]:
        """One stream per ``files`` entry, in config order."""
        base_dir = Path(self.config.get("base_dir") or "")
        sources = [source_from_config(entry, index, base_dir) for index, entry in enumerate(self.config["files"])]
        if not sources:
            raise TypedCSVError("setting files is empty: no stream to extract")
        names = [source.stream for source in sources]
        for name in names:
            if names.count(name) > 1:
                raise TypedCSVError(f"setting files: stream {name!r} is declared twice")
        return [TypedCSVStream(self, source) for source in sources]

    def setup_mapper(self) -> None:
        """Set up stream maps as the SDK does, then give each its stream's whole schema.

        The SDK registers the schemas from its catalog model, which keeps only the JSON
        Schema keys it knows: ``x-sql-type-oid`` and ``x-sql-typmod`` would be missing
        from the SCHEMA messages, and step 2 builds its columns from them.
        """
        super().setup_mapper()
        for stream in self.streams.values():
            self.mapper.register_raw_stream_schema(stream.name, stream.schema, stream.primary_keys)

    # The SDK entry points that can reach discover_streams() or a file, wrapped so
    # that bad input ends in one error line and exit status 1 instead of a traceback.

    @classmethod
    def invoke(cls, **kwargs: Any) -> None:  # type: ignore[override]
        """Sync, as the SDK does, with bad input reported by :func:`exit_on_error`."""
        with exit_on_error(cls.logger):
            super().invoke(**kwargs)

    @classmethod
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        """``--discover``, as the SDK does, with bad input reported by :func:`exit_on_error`."""
        with exit_on_error(cls.logger):
            super().cb_discover(ctx, param, value)

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """``--test``, as the SDK does, with bad input reported by :func:`exit_on_error`."""
        with exit_on_error(cls.logger):
            super().cb_test(ctx, param, value)
