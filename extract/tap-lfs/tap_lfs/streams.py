"""One stream per published table file of the day.

The file is not parsed here: it is already in PostgreSQL's CSV text form, which only
Postgres itself reads back without loss (Python's csv module cannot tell NULL from
an empty string). So the stream hands the loader the file itself, as a BATCH message
with a ``csv`` encoding, after checking it is byte for byte the file step 1 wrote.

The stream's name only has to be unique (``{source}-{key}``); the table's identity
travels in its SCHEMA message, under ``x-pipeline-table``: the source, the source
schema and the exact table name (which name its analytics table), and the file's
key, sha256 and manifest row count (which the load records for reconciliation).
"""

from __future__ import annotations

import typing as t

from singer_sdk import Stream

from pipeline.adapters.singer import BaseBatchFileEncoding, BatchConfig, csv_batch_config
from pipeline.core.errors import PipelineError, TransientPipelineError, first_line
from pipeline.core.files import sha256_file
from pipeline.core.store import is_object_store
from pipeline.days.folder import TableFile
from pipeline.days.layout import TABLE_IDENTITY_KEY

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_lfs.tap import TapLFS


def stream_schema(table: TableFile) -> dict[str, t.Any]:
    """The table's JSON schema with its identity added (see the module docstring)."""
    identity = {
        "source": table.source,
        "source_schema": table.source_schema,
        "table": table.table,
        "key": table.key,
        "sha256": table.sha256,
        "rows": table.rows,
    }
    return {**table.schema, TABLE_IDENTITY_KEY: identity}


class DayTableStream(Stream):
    """A table of the day, emitted as its CSV file."""

    def __init__(self, tap: TapLFS, table: TableFile) -> None:
        self.table = table
        self.lfs_tap = tap  # to read the day's receipt again (``_changed``)
        super().__init__(tap, schema=stream_schema(table), name=f"{table.source}-{table.key}")
        self.primary_keys = table.key_properties

    def get_batch_config(self, config: t.Mapping) -> BatchConfig:
        """Always batch: the file is the batch."""
        return csv_batch_config(self.table.path.parent.as_uri())

    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Yield the table's file, refusing one that changed since step 1 wrote it.

        An object in object storage is not read here: the loader checks its sha256 in
        the one read that loads it (``target_analytics.sinks``), instead of a second
        download. Objects a receipt names are never rewritten (a rerun writes under a
        run folder of its own), so a mismatch there is damage, not a race.
        """
        if is_object_store(self.table.path):
            yield batch_config.encoding, [str(self.table.path)]  # the plain URL: its key as it is
            return
        actual = sha256_file(self.table.path)
        if actual != self.table.sha256:
            raise self._changed(
                f"{self.table.path} has sha256 {actual}, but its manifest says {self.table.sha256}: "
                "the file changed after step 1 wrote it; rerun step 1 for this day"
            )
        yield batch_config.encoding, [self.table.path.resolve().as_uri()]

    def _changed(self, message: str) -> PipelineError:
        """The refusal of a file that changed since discovery: transient if step 1 republished the day meanwhile.

        A step-1 rerun racing this run replaces the file; its receipt then lists
        another checksum (or the day is being replaced, which ``read_day`` says). Only a
        file that changed behind the receipt's back is damaged.
        """
        try:
            now = {(table.source, table.key): table.sha256 for table in self.lfs_tap.day_tables()}
        except TransientPipelineError as exc:
            return TransientPipelineError(f"{message}; {first_line(exc)}")
        except PipelineError:
            return PipelineError(message)
        if now.get((self.table.source, self.table.key)) != self.table.sha256:
            return TransientPipelineError(f"{message}; but step 1 published the day again meanwhile: retry")
        return PipelineError(message)

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """Not supported: the file is only ever handed over whole (see the module docstring)."""
        raise PipelineError(f"tap-lfs emits {self.name} as a BATCH file only, never as RECORD messages")
