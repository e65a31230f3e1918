"""The one stream class: a configured CSV file, read in full on every run."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any, cast

from singer_sdk import Stream, Tap
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context

from pipeline.adapters.singer import CSV_ENCODING, BaseBatchFileEncoding, BatchConfig, csv_batch_config
from pipeline.core.names import encode_name
from pipeline.days.handover import DayFileSettings, Handover, file_uri, tap_file, written_once
from pipeline.days.pgcsv import header_line
from tap_typed_csv.batch import write_batch
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

    @cached_property
    def day_files(self) -> DayFileSettings | None:
        """Where the file's day file goes (``pipeline.days.handover``); None: RECORD messages."""
        return DayFileSettings.from_config(self.config, "tap-typed-csv")

    def get_batch_config(self, config: Mapping) -> BatchConfig | None:
        """Batch mode (the day file itself, encoding ``csv``) when the day-file settings are set."""
        if self.day_files is None:
            return None
        return csv_batch_config(file_uri(self.day_files.data_dir))

    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Check the whole file into its day file, once (see tap_typed_csv.batch), and hand it over."""
        del batch_config, context  # the place is the day file's; one file, no partitions
        source = self._source
        path = tap_file(cast(DayFileSettings, self.day_files), encode_name(self.name))
        with written_once(path) as digest:
            digest.write(header_line(column.name for column in source.columns))
            rows = write_batch(source.path, source.columns, source.path_setting, digest)
            sha256 = digest.sha256()
        self.logger.info("Checked %d rows of %s into %s", rows, source.path, path)
        yield CSV_ENCODING, [Handover(uri=file_uri(path), rows=rows, sha256=sha256).manifest_entry()]
