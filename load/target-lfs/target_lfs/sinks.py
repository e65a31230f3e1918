"""The sink: one table's CSV file in its day folder under the job's staging root."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meltanolabs_target_csv.sinks import CSVSink

from pipeline.lfs import TableFile, day_folder
from target_lfs.pgcsv import RowEncoder

if TYPE_CHECKING:
    from target_lfs.target import TargetLFS


def table_name(stream_name: str) -> str:
    """Return the table of a stream: its name without a ``<schema>-`` prefix (``public-orders``)."""
    return stream_name.split("-", 1)[-1]


class LFSSink(CSVSink):
    """Writes a stream as PostgreSQL CSV, counting rows and hashing the bytes as they are written."""

    # target-csv holds the whole stream in memory unless batch_size_rows is set; a
    # bounded default keeps a large table from exhausting memory.
    MAX_SIZE_DEFAULT = 10_000

    def __init__(
        self,
        target: TargetLFS,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: list[str] | None,
    ) -> None:
        self.lfs_target = target
        self.table = table_name(stream_name)
        self.folder = target.staging / day_folder(target.folder_template, self.table, target.day)
        self.rows = 0
        self._digest = hashlib.sha256()
        super().__init__(target, stream_name, schema, key_properties)
        self.encoder = RowEncoder(self.schema["properties"])

    @property
    def output_file(self) -> Path:
        """Return the table's file in its staged day folder (replaces target-csv's naming scheme)."""
        return self.folder / f"{self.table}.csv"

    def setup(self) -> None:
        """Claim the table for this stream, then create its file with the header line.

        The claim refuses a second sink for a table already written in this run (a
        changed SCHEMA, or two streams with the same table name) instead of
        overwriting its file.
        """
        self.lfs_target.claim_table(self)
        self.logger.info("Writing %s to %s", self.stream_name, self.output_file)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write(self.encoder.header(), mode="wb")

    def process_batch(self, context: dict[str, Any]) -> None:
        """Append the batch's records to the file."""
        records = context.get("records") or []
        self._write(self.encoder.lines(records), mode="ab")
        self.rows += len(records)

    def _parse_timestamps_in_record(self, record: dict[str, Any], schema: dict[str, Any], treatment: Any) -> None:
        """Keep date and time values as the text the tap sent.

        The SDK parses them to datetime objects; writing those back can only change
        the text (e.g. drop the microseconds), never improve it.
        """

    def _write(self, text: str, *, mode: str) -> None:
        data = text.encode("utf-8")
        self._digest.update(data)
        with self.output_file.open(mode) as handle:
            handle.write(data)

    def table_file(self) -> TableFile:
        """Describe the written file for the folder's metadata."""
        return TableFile(
            table=self.table,
            path=self.output_file,
            rows=self.rows,
            sha256=self._digest.hexdigest(),
            schema=self.schema,
            key_properties=list(self.key_properties),
        )
