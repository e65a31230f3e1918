"""The one stream class: a configured CSV file, read in full on every run."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from singer_sdk import Stream, Tap
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig, StorageTarget
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context

from pipeline.store import local_scratch
from tap_typed_csv.batch import header_line, write_batch
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

    def get_batch_config(self, config: Mapping) -> BatchConfig | None:
        """Batch mode (one PostgreSQL-CSV file, encoding ``csv``) when ``csv_batch_dir`` is set."""
        folder = config.get("csv_batch_dir")
        if not folder:
            return None
        root = local_scratch(folder, Path(config.get("base_dir") or ""))
        return BatchConfig(encoding=BaseBatchFileEncoding(format="csv"), storage=StorageTarget(root=root.as_uri()))

    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Check the whole file into one batch file (see tap_typed_csv.batch) and yield it."""
        folder = Path(batch_config.storage.root.removeprefix("file://"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}-{uuid.uuid4().hex}.csv"
        source = self._source
        try:
            with path.open("wb") as out:
                out.write(header_line(source.columns))
                rows = write_batch(source.path, source.columns, source.path_setting, out)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.logger.info("Checked %d rows of %s into %s", rows, source.path, path)
        yield batch_config.encoding, [path.as_uri()]
