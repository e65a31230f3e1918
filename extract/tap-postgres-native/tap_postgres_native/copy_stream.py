r"""A full-table stream that Postgres itself writes as a CSV batch file, when batch mode is on.

Why: through RECORD messages every value is read into Python, made JSON by the tap,
parsed again by the loader and encoded back to CSV text: tens of thousands of rows
per second at best (see docs/performance.md). ``COPY (SELECT ...) TO STDOUT (FORMAT
csv, HEADER)`` writes the day file's exact form at the speed of the server, in
bounded memory, so with ``csv_batch_dir`` set each table becomes one CSV file there
and one BATCH message (encoding ``csv``) that target-lfs adopts into its day folder.

The file is the contract's PostgreSQL CSV text form by construction: NULL unquoted
empty, the empty string ``""``, bytea ``\x`` hex, json as its text, dates ISO.
Booleans are cast to text, since COPY writes a bare boolean as ``t``/``f``, and the
session settings that shape the text of values are pinned so that a rerun writes the
same bytes whatever the server's defaults.

Without ``csv_batch_dir`` the stream is tap-postgres's own (RECORD messages), which
is what a Singer target other than target-lfs expects.
"""

from __future__ import annotations

import copy
import typing as t
import uuid
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig, StorageTarget
from singer_sdk.mapper import SameRecordTransform
from sqlalchemy.dialects import postgresql
from tap_postgres.client import PostgresStream

from pipeline.lfs import resolve_data_dir

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

CSV_ENCODING = BaseBatchFileEncoding(format="csv")

# Pinned per transaction (SET LOCAL): the text of dates, times, intervals, floats and
# bytea depends on them.
SESSION_SETTINGS = {
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "1",
    "bytea_output": "hex",
}


class CopyStream(PostgresStream):
    """tap-postgres's stream; in batch mode the table is one COPY into one CSV file."""

    @cached_property
    def schema(self) -> dict:
        """The catalog entry's schema exactly as discovery wrote it.

        The SDK's own property round-trips it through its ``Schema`` model, which
        drops every key it does not know: the table's ``x-source-schema`` /
        ``x-source-table`` and each column's ``x-sql-type-oid``, ``x-source-type``...
        """
        return copy.deepcopy(self.catalog_entry["schema"])

    def get_batch_config(self, config: t.Mapping) -> BatchConfig | None:
        """Batch mode, CSV encoding, when ``csv_batch_dir`` is set; else RECORD messages."""
        folder = config.get("csv_batch_dir")
        if not folder:
            return None
        return BatchConfig(encoding=CSV_ENCODING, storage=StorageTarget(root=resolve_data_dir(folder).as_uri()))

    def copy_statement(self, context: Context | None) -> str:
        """``COPY (<tap-postgres's query, booleans as text>) TO STDOUT (FORMAT csv, HEADER)``.

        The query is tap-postgres's own (selected columns, its filters and limit), so
        batch mode reads exactly the rows and columns RECORD mode would.
        """
        query = self.build_query(context=context)
        properties = self.schema["properties"]
        columns = [
            sa.cast(column, sa.Text).label(column.name)
            if properties.get(column.name, {}).get("x-sql-datatype") == "boolean"
            else column
            for column in query.selected_columns
        ]
        select = query.with_only_columns(*columns)
        text = select.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        return f"COPY ({text}) TO STDOUT (FORMAT csv, HEADER true)"

    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Write the table to one CSV file under the batch folder and yield it."""
        if not all(isinstance(stream_map, SameRecordTransform) for stream_map in self.stream_maps):
            raise RuntimeError(f"{self.name}: stream maps cannot be applied to CSV batches; unset csv_batch_dir")
        folder = Path(batch_config.storage.root.removeprefix("file://"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}-{uuid.uuid4().hex}.csv"
        statement = self.copy_statement(context)
        try:
            with self.connector._connect() as connection, connection.begin():
                cursor = connection.connection.dbapi_connection.cursor()
                for name, value in SESSION_SETTINGS.items():
                    cursor.execute("SELECT set_config(%s, %s, true)", (name, value))
                with path.open("wb") as out:
                    cursor.copy_expert(statement, out, size=1 << 20)
                rows = cursor.rowcount
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.logger.info("Copied %d rows of %s to %s", rows, self.fully_qualified_name, path)
        yield batch_config.encoding, [path.as_uri()]
