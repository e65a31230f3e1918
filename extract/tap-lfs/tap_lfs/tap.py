"""The tap: discovers the day's tables from the step-1 receipts.

Discovery is where the day is gated: a step-1 job without a receipt for the day
makes the tap fail before it emits anything, naming the job and its rerun command.
"""

from __future__ import annotations

from singer_sdk import Tap
from singer_sdk import typing as th

from pipeline.core.dates import parse_pipeline_date
from pipeline.core.errors import run_plugin_cli
from pipeline.days.folder import TableFile
from pipeline.days.layout import resolve_data_dir
from pipeline.days.receipts import read_day
from tap_lfs.streams import DayTableStream


class TapLFS(Tap):
    """Reads the tables that the step-1 jobs published for one day."""

    name = "tap-lfs"
    config_jsonschema = th.PropertiesList(
        th.Property("data_dir", th.StringType, required=True, description="Root of the dated files."),
        th.Property("pipeline_date", th.StringType, description="The day to read, YYYY-MM-DD."),
        th.Property(
            "jobs",
            th.ArrayType(th.StringType),
            description="The step-1 jobs that must all have succeeded for the day (default: those step 2 depends on).",
        ),
    ).to_dict()

    def setup_mapper(self) -> None:
        """The SDK's mapper, given each stream's schema exactly as built.

        The SDK registers schemas through its ``Catalog`` model, which drops every key
        it does not know: the table's ``x-pipeline-table`` identity and each column's
        ``x-sql-type-oid``/``x-sql-typmod``, which the loader needs.
        """
        super().setup_mapper()
        for stream in self.streams.values():
            self.mapper.register_raw_stream_schema(stream.name, stream.schema, stream.primary_keys)

    def day_tables(self) -> list[TableFile]:
        """The tables the day's receipts list now (refused as ``pipeline.days.receipts.read_day`` refuses)."""
        day = parse_pipeline_date(self.config.get("pipeline_date"))
        jobs = self.config.get("jobs")
        if not jobs:
            from pipeline.jobs import STEP1_JOBS  # reads the Meltano project: only when needed

            jobs = STEP1_JOBS
        return read_day(resolve_data_dir(self.config["data_dir"]), day, list(jobs))

    def discover_streams(self) -> list[DayTableStream]:
        """One stream per table listed in the day's receipts."""
        return [DayTableStream(self, table) for table in self.day_tables()]


def main() -> None:
    """Run the tap; bad input ends it with one line on stderr."""
    run_plugin_cli("tap-lfs", TapLFS.cli)
