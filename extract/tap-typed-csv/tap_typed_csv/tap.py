"""The tap: the ``files`` setting, one stream per file, and a clean exit on bad input."""

from __future__ import annotations

from pathlib import Path

from singer_sdk import Tap
from singer_sdk import typing as th

from pipeline.core.errors import run_plugin_cli
from pipeline.days.handover import SETTINGS as DAY_FILE_SETTINGS
from tap_typed_csv.errors import TypedCSVError
from tap_typed_csv.source import source_from_config
from tap_typed_csv.streams import TypedCSVStream

_FILE = th.ObjectType(
    th.Property("stream", th.StringType, required=True, description="The stream name."),
    th.Property("path", th.StringType, required=True, description="The CSV file (relative: to base_dir), or s3://..."),
    th.Property("schema", th.StringType, required=True, description="Its JSON Schema file, relative to base_dir."),
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
        *(th.Property(name, th.StringType, description=text) for name, text in DAY_FILE_SETTINGS.items()),
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


def main() -> None:
    """Run the tap; bad input ends it with one line on stderr (and the failure file), not a traceback."""
    run_plugin_cli("tap-typed-csv", TapTypedCSV.cli)
