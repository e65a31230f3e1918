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
from typing import TYPE_CHECKING, Any, BinaryIO

from meltanolabs_target_csv.sinks import CSVSink
from singer_sdk.helpers._batch import BaseBatchFileEncoding

from pipeline.crashpoints import pause_point
from pipeline.errors import PipelineError
from pipeline.files import batch_file_path
from pipeline.lfs import (
    SOURCE_SCHEMA_KEY,
    SOURCE_TABLE_KEY,
    TableFile,
    data_file_name,
    day_folder,
)
from pipeline.names import CSV_SOURCE, encode_name, table_folder
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


def source_identity(source: str, stream_name: str, schema: dict[str, Any]) -> tuple[str | None, str]:
    """The ``(source schema, exact table name)`` of a stream.

    tap-postgres-native names them in its SCHEMA message (top-level
    ``x-source-schema`` / ``x-source-table``), because its stream names
    (``<schema>-<table>``) cannot be split back when a name holds ``-``. The CSV
    source's table is its stream name, without a schema.
    """
    if SOURCE_TABLE_KEY in schema:
        return schema.get(SOURCE_SCHEMA_KEY), schema[SOURCE_TABLE_KEY]
    if source == CSV_SOURCE:
        return None, stream_name
    raise PipelineError(
        f"stream {stream_name!r}: its SCHEMA message has no {SOURCE_SCHEMA_KEY} / {SOURCE_TABLE_KEY}, which "
        f"target-lfs needs for source {source} (tap-postgres-native sends them; use it, or set source to csv)"
    )


def table_key(source: str, source_schema: str | None, table: str) -> str:
    """The table's folder name: ``pipeline.names``' encoding, the one way a source name enters a path."""
    if source == CSV_SOURCE:
        key = encode_name(table)
    elif source_schema:
        key = table_folder(source_schema, table)
    else:
        raise PipelineError(f"table {table!r} of source {source} has no source schema")
    return key


def contained_path(root: Path, relative: str) -> Path:
    """``root / relative``, refusing any result outside ``root`` (whatever a name holds), on either backend."""
    path = (root / relative).resolve()
    if not str(path).startswith(f"{str(root.resolve()).rstrip('/')}/"):
        raise PipelineError(f"refused to write {path}: it is outside the staging folder {root}")
    return path


def read_header(source: BinaryIO) -> bytes:
    """The header line of a CSV file, even when a quoted column name holds a line break."""
    header = source.readline()
    while header.count(b'"') % 2 and (more := source.readline()):
        header += more
    return header


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
        self.source = target.source
        self.source_schema, self.table = source_identity(self.source, stream_name, schema)
        self.key = table_key(self.source, self.source_schema, self.table)
        self.folder = target.table_folder(day_folder(target.folder_template, self.key, target.day))
        try:
            file_name = data_file_name(self.key)
        except PipelineError as exc:
            raise PipelineError(f"table {self.table!r} (schema {self.source_schema!r}): {exc}") from exc
        self._output_file = contained_path(self.folder, file_name)
        self.rows = 0
        self._digest = hashlib.sha256()
        self._out: BinaryIO | None = None
        super().__init__(target, stream_name, schema, key_properties)
        self.encoder = RowEncoder(self.schema["properties"])

    @property
    def output_file(self) -> Path:
        """Return the table's file in its staged day folder (replaces target-csv's naming scheme)."""
        return self._output_file

    def setup(self) -> None:
        """Claim the table for this stream, then create its file with the header line.

        The claim refuses a second sink for a table already written in this run (a
        changed SCHEMA, or two streams with the same table name) instead of
        overwriting its file.
        """
        self.lfs_target.claim_table(self)
        self.logger.info("Writing %s to %s", self.stream_name, self.output_file)
        self.folder.mkdir(parents=True, exist_ok=True)
        # One handle for the whole stream: an object cannot be appended to, only written once.
        self._out = self.output_file.open("wb", **self.lfs_target.open_options)
        self._write(self.encoder.header())

    def close(self) -> None:
        """Finish the table's file (in an object store: complete its upload); the stream has ended."""
        if self._out is not None:
            self._out.close()
            self._out = None

    def process_batch(self, context: dict[str, Any]) -> None:
        """Append the batch's records to the file."""
        records = context.get("records") or []
        self._write(self.encoder.lines(records))
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
        out = self._output()
        with path.open("rb") as source:
            header = read_header(source)
            columns = next(csv.reader(io.StringIO(header.decode("utf-8"), newline="")), [])
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

    def _output(self) -> BinaryIO:
        if self._out is None:
            raise PipelineError(
                f"{self.output_file} was already closed: stream {self.stream_name} sent data after its end"
            )
        return self._out

    def _write(self, text: str) -> None:
        data = text.encode("utf-8")
        self._digest.update(data)
        self._output().write(data)

    def table_file(self) -> TableFile:
        """Describe the written file for the folder's metadata (the schema without the identity keys)."""
        schema = {k: v for k, v in self.schema.items() if k not in (SOURCE_SCHEMA_KEY, SOURCE_TABLE_KEY)}
        return TableFile(
            key=self.key,
            source=self.source,
            source_schema=self.source_schema,
            table=self.table,
            path=self.output_file,
            rows=self.rows,
            sha256=self._digest.hexdigest(),
            schema={"type": "object", **schema},
            key_properties=list(self.key_properties),
        )
