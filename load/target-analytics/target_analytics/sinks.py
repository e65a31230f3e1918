r"""The sink: COPY each day file, as it is, into the day's staging schema.

The files are PostgreSQL CSV text (NULL unquoted, empty string quoted, bytea as
``\x`` hex), so ``COPY ... (FORMAT csv, HEADER MATCH)`` reads every value back
exactly, checks the header against the columns, and is the fastest way in.
"""

from __future__ import annotations

import csv
import typing as t
from pathlib import Path

from singer_sdk.helpers._batch import BaseBatchFileEncoding
from target_postgres.sinks import PostgresSink

from pipeline.crashpoints import pause_point
from pipeline.dates import parse_pipeline_date
from pipeline.errors import PipelineError
from pipeline.lfs import batch_file_path
from pipeline.staging import staging_schema
from target_analytics.connector import AnalyticsConnector

_BLOCK = 1 << 20


class StagingSink(PostgresSink):
    """target-postgres's sink, writing into the day's staging schema with COPY."""

    connector_class = AnalyticsConnector

    @property
    def schema_name(self) -> str:
        """The day's staging schema, whatever the stream's name says."""
        return staging_schema(parse_pipeline_date(self.config.get("pipeline_date")))

    def _header(self, path: Path) -> list[str]:
        """The file's columns, in its order; each must be a property of the stream's schema."""
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), [])
        if unknown := [name for name in header if name not in self.schema["properties"]]:
            raise PipelineError(f"{path}: header has columns not in the schema of {self.stream_name}: {unknown}")
        return header

    def process_batch_files(self, encoding: BaseBatchFileEncoding, files: t.Sequence[str]) -> None:
        """COPY ``csv`` batch files; other encodings go to target-postgres."""
        if encoding.format != "csv":
            super().process_batch_files(encoding, files)
            return
        for uri in files:
            path = batch_file_path(uri)
            columns = ", ".join(f'"{name}"' for name in self._header(path))
            target = f'"{self.schema_name}"."{self.table_name}"'
            statement = f"COPY {target} ({columns}) FROM STDIN (FORMAT csv, HEADER MATCH)"
            with self.connector._connect() as connection, connection.begin():
                cursor = connection.connection.cursor()
                with path.open("rb") as source, cursor.copy(statement) as copy:
                    while block := source.read(_BLOCK):
                        copy.write(block)
                self.record_counter_metric.increment(cursor.rowcount)
                self.logger.info("Copied %d rows of %s into %s", cursor.rowcount, path, self.full_table_name)
            pause_point("extract")
