"""The sink: one table's CSV file in its day folder under the job's staging root.

Two ways in, one file out: RECORD messages are encoded here (``pgcsv``); a BATCH
message of encoding ``csv`` (a file already in PostgreSQL's CSV form, written by the
source's own ``COPY ... TO``, see tap-postgres-native) is appended as it is, block by
block, after its header is checked against the schema. Either way the rows are
counted and the bytes hashed as they are written, and the header line is ours.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meltanolabs_target_csv.sinks import CSVSink
from singer_sdk.helpers._batch import BaseBatchFileEncoding

from pipeline.crashpoints import pause_point
from pipeline.errors import PipelineError
from pipeline.lfs import TableFile, batch_file_path, day_folder
from target_lfs.pgcsv import RowEncoder

if TYPE_CHECKING:
    from target_lfs.target import TargetLFS


_BLOCK = 1 << 20


class RowCounter:
    r"""Counts the rows of PostgreSQL CSV text fed in blocks.

    A line break ends a row unless it is inside a quoted field. In this form every
    ``"`` belongs to a quoted field (and is doubled inside one), so a line break is
    inside a field exactly when an odd number of ``"`` precede it in the row. Blocks
    without any ``"`` (the common case) are counted at C speed.
    """

    def __init__(self) -> None:
        self.rows = 0
        self._quoted = False

    def feed(self, block: bytes) -> None:
        """Count the rows that end in ``block``."""
        if not self._quoted and b'"' not in block:
            self.rows += block.count(b"\n")
            return
        *lines, rest = block.split(b"\n")
        for line in lines:
            if line.count(b'"') % 2:
                self._quoted = not self._quoted
            if not self._quoted:
                self.rows += 1
        if rest.count(b'"') % 2:
            self._quoted = not self._quoted


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

    def process_batch_files(self, encoding: BaseBatchFileEncoding, files: Sequence[str]) -> None:
        """Append ``csv`` batch files (then delete them); other encodings go to the SDK."""
        if encoding.format != "csv":
            super().process_batch_files(encoding, files)
            return
        for uri in files:
            path = batch_file_path(uri)
            rows = self._append_csv_file(path)
            path.unlink()
            self.record_counter_metric.increment(rows)
            self.logger.info("Adopted %d rows of %s from %s", rows, self.stream_name, path)
            pause_point("extract")

    def _append_csv_file(self, path: Path) -> int:
        """Append the rows of a PostgreSQL CSV file whose header is the schema's columns; returns them."""
        counter = RowCounter()
        with path.open("rb") as source, self.output_file.open("ab") as out:
            header = source.readline()
            columns = next(csv.reader(io.StringIO(header.decode("utf-8"))), [])
            if columns != self.encoder.columns:
                raise PipelineError(
                    f"{path}: header {columns} is not the columns of {self.stream_name} {self.encoder.columns}"
                )
            while block := source.read(_BLOCK):
                counter.feed(block)
                self._digest.update(block)
                out.write(block)
        self.rows += counter.rows
        return counter.rows

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
