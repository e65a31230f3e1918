"""The sink: one table's CSV file in its day folder under the job's staging root.

Two ways in, one file out, whose header line is always ours:

* a BATCH message of encoding ``csv`` handing over a day file (``pipeline.days.handover``:
  written once by tap-postgres-native's ``COPY ... TO`` or tap-typed-csv, with its row
  count and sha256): the file is adopted by a rename, after its header line alone is
  checked against the stream's schema; its bytes are never read again (a ``csv`` batch
  file without the figures is refused);
* RECORD messages are encoded here (``pgcsv``), counted and hashed as they are written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meltanolabs_target_csv.sinks import CSVSink
from upath import UPath

from pipeline.adapters.singer import BaseBatchFileEncoding, KeepsDateText
from pipeline.core.crashpoints import pause_point
from pipeline.core.errors import PipelineError
from pipeline.core.names import CSV_SOURCE, encode_name, table_folder
from pipeline.core.run_owner import run_owner
from pipeline.days.folder import TableFile
from pipeline.days.handover import Handover, incoming_dir, path_of, read_header
from pipeline.days.layout import SOURCE_SCHEMA_KEY, SOURCE_TABLE_KEY, data_file_name, day_folder
from pipeline.days.pgcsv import header_line
from target_lfs.pgcsv import RowEncoder

if TYPE_CHECKING:
    from target_lfs.target import TargetLFS


_BLOCK = 1 << 20


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
    """The table's folder name: ``pipeline.core.names``' encoding, the one way a source name enters a path."""
    if source == CSV_SOURCE:
        key = encode_name(table)
    elif source_schema:
        key = table_folder(source_schema, table)
    else:
        raise PipelineError(f"table {table!r} of source {source} has no source schema")
    return key


def contained_path(root: Path, relative: str) -> Path:
    """``root / relative``, refusing any result outside ``root`` (whatever a name holds)."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise PipelineError(f"refused to write {path}: it is outside the staging folder {root}")
    return path


class LFSSink(KeepsDateText, CSVSink):
    """Writes a stream as PostgreSQL CSV, counting rows and hashing the bytes as they are written.

    Date and time values are written as the text the tap sent (``KeepsDateText``).
    """

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
        try:
            file_name = data_file_name(self.key)
        except PipelineError as exc:
            raise PipelineError(f"table {self.table!r} (schema {self.source_schema!r}): {exc}") from exc
        self.day_path = target.day_files.day_path(self.key)
        if target.object_store:
            # The run's folder of the day folder; the adopted object's, once there is one.
            self.folder = self.day_path / run_owner().token
            self._output_file = self.folder / file_name
        else:
            self.folder = contained_path(target.staging, day_folder(target.folder_template, self.key, target.day))
            self._output_file = contained_path(self.folder, file_name)
        self.rows = 0
        self._digest = hashlib.sha256()
        self._adopted: Handover | None = None  # the tap's day file, when it handed one over
        super().__init__(target, stream_name, schema, key_properties)
        self.encoder = RowEncoder(self.schema["properties"])

    @property
    def output_file(self) -> Path | UPath:
        """Return the table's file in its staged day folder (replaces target-csv's naming scheme)."""
        return self._output_file

    def setup(self) -> None:
        """Claim the table for this stream, then create its file with the header line (locally).

        The claim refuses a second sink for a table already written in this run (a
        changed SCHEMA, or two streams with the same table name) instead of
        overwriting its file. In an object store the file is the tap's, adopted by key.
        """
        self.lfs_target.claim_table(self)
        if self.lfs_target.object_store:
            return
        self.logger.info("Writing %s to %s", self.stream_name, self.output_file)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write(header_line(self.encoder.columns), mode="wb")

    def process_batch(self, context: dict[str, Any]) -> None:
        """Append the batch's records to the file."""
        records = context.get("records") or []
        if records:
            self._refuse_after_adoption("RECORD messages")
            self._refuse_in_object_store()
        self._write(self.encoder.lines(records).encode("utf-8"), mode="ab")
        self.rows += len(records)

    def process_batch_files(self, encoding: BaseBatchFileEncoding, files: Sequence[str]) -> None:
        """Adopt a handed-over ``csv`` day file (``pipeline.days.handover``); other encodings go to the SDK."""
        if encoding.format != "csv":
            super().process_batch_files(encoding, files)
            return
        for entry in files:
            handover = Handover.from_manifest_entry(entry)
            if handover is None:
                raise PipelineError(
                    f"table {self.table!r}: batch file {entry} comes without its row count and sha256; target-lfs "
                    "adopts only day files handed over as pipeline/days/handover.py says (tap-postgres-native, "
                    "tap-typed-csv)"
                )
            self._adopt(handover)
            self.record_counter_metric.increment(handover.rows)
            self.logger.info("Adopted %d rows of %s from %s", handover.rows, self.stream_name, handover.uri)
            pause_point("extract")

    def _adopt(self, handover: Handover) -> None:
        """Make the tap's file the table's day file, its header checked, its figures taken as sent.

        Locally by a rename, only from this job and day's ``.incoming`` (the same file
        system); in an object store by its key, only in a run's folder of the table's
        day folder. Only as the table's one file.
        """
        self._refuse_after_adoption("a second file")
        if self.rows:
            raise PipelineError(f"table {self.table!r}: a day file handed over after RECORD messages; refused")
        path = path_of(handover.uri)
        if self.lfs_target.object_store:
            if str(path.parent.parent) != str(self.day_path) or path.name != self.output_file.name:
                raise PipelineError(
                    f"table {self.table!r}: the tap wrote {path}, not {self.day_path}/<run>/{self.output_file.name}; "
                    "give the tap the same data_dir, pipeline_date and folder_template as target-lfs"
                )
            self._check_header(read_header(path), path)
            self.folder, self._output_file = path.parent, path
        else:
            incoming = incoming_dir(self.lfs_target.staging)
            if not path.resolve().is_relative_to(incoming.resolve()):
                raise PipelineError(
                    f"table {self.table!r}: the tap wrote {path}, not under {incoming}; give the tap the same "
                    "data_dir, pipeline_date and job as target-lfs"
                )
            self._check_header(read_header(path), path)
            os.replace(path, self.output_file)
        self.rows = handover.rows
        self._adopted = handover

    def _refuse_in_object_store(self) -> None:
        """Objects are written once: only a tap's handed-over day file can become one."""
        if self.lfs_target.object_store:
            raise PipelineError(
                f"table {self.table!r}: target-lfs writes to an object store (DATA_DIR "
                f"{self.lfs_target.day_files.data_dir}) only day files a tap hands over (pipeline/days/handover.py: "
                "give the tap data_dir); RECORD messages need a local DATA_DIR"
            )

    def _refuse_after_adoption(self, what: str) -> None:
        """A table has one day file: nothing may follow the adopted one."""
        if self._adopted is not None:
            raise PipelineError(
                f"table {self.table!r}: {what} after its day file {self._adopted.uri} was adopted; refused"
            )

    def _check_header(self, header: bytes, path: Path | UPath) -> None:
        """Refuse, in one line naming the table, a file whose header line is not exactly the stream's columns."""
        if header == header_line(self.encoder.columns):
            return
        columns = next(csv.reader(io.StringIO(header.decode("utf-8", "replace"), newline="")), [])
        raise PipelineError(
            f"table {self.table!r} (stream {self.stream_name}): {path} has the header {columns}, "
            f"not the stream's columns {self.encoder.columns}"
        )

    def _write(self, data: bytes, *, mode: str) -> None:
        self._digest.update(data)
        with self.output_file.open(mode) as handle:
            handle.write(data)

    def table_file(self) -> TableFile:
        """Describe the written file for the folder's metadata (the schema without the identity keys)."""
        if self._adopted is None:
            self._refuse_in_object_store()
        schema = {k: v for k, v in self.schema.items() if k not in (SOURCE_SCHEMA_KEY, SOURCE_TABLE_KEY)}
        return TableFile(
            key=self.key,
            source=self.source,
            source_schema=self.source_schema,
            table=self.table,
            path=self.output_file,
            rows=self.rows,
            sha256=self._adopted.sha256 if self._adopted else self._digest.hexdigest(),
            schema={"type": "object", **schema},
            key_properties=list(self.key_properties),
        )
