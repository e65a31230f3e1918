"""The one stream class: a configured CSV file, read in full on every run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from singer_sdk import Stream, Tap
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context

from tap_typed_csv.reader import read_records
from tap_typed_csv.source import CSVSource


class TypedCSVStream(Stream):
    """Records of one CSV file, typed by the reader; no replication key, no state."""

    # The reader already produced exactly the schema's Python types (int, Decimal,
    # bool, str), so the SDK's per-record conformance pass would only cost time.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, source: CSVSource) -> None:
        super().__init__(tap, schema=source.schema, name=source.stream)
        self.primary_keys = source.key_properties
        self._source = source

    def get_records(self, context: Context | None) -> Iterator[dict[str, Any]]:
        """Every row of the file, in file order."""
        del context  # one file, no partitions
        yield from read_records(self._source.path, self._source.columns, self._source.path_setting)
