"""The target: validates the run's day, fills the job's staging tree, writes each folder's metadata.

It never publishes: a separate step moves the staged folders into place only when
the whole Meltano job succeeded, so a failed run cannot replace a good day.
"""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import IO

from meltanolabs_target_csv.target import TargetCSV
from singer_sdk import typing as th
from singer_sdk.io_base import SingerReader

from pipeline.core.dates import parse_pipeline_date
from pipeline.core.errors import PipelineError, run_plugin_cli
from pipeline.core.files import dump_json, write_text_atomic
from pipeline.core.names import CSV_SOURCE, POSTGRES_SOURCE
from pipeline.core.run_owner import run_owner
from pipeline.core.store import data_root, is_object_store, verify
from pipeline.days.bookmarks import BOOKMARKS_FILE, BOOKMARKS_MESSAGE
from pipeline.days.folder import write_folder_metadata
from pipeline.days.handover import DayFileSettings, incoming_dir
from pipeline.days.layout import LEFT_OUT_FILE, LEFT_OUT_MESSAGE, staging_root
from pipeline.days.object_store import begin_run, finish_run
from pipeline.runs.locks import hold_run_lock
from target_lfs.sinks import LFSSink

SOURCES = (POSTGRES_SOURCE, CSV_SOURCE)


def required_setting(config: dict, name: str, variable: str) -> str:
    """Return a setting that must not be empty (Meltano turns an unset variable into "")."""
    value = config.get(name)
    if not value:
        raise PipelineError(f"target-lfs setting {name} is not set (give it, e.g. through {variable})")
    return str(value)


def reset_staging(staging: Path) -> None:
    """Empty the staging tree of whatever a crashed run left in it, but its ``.incoming``.

    The tap starts beside this target and may already be writing its day files there
    (``pipeline.days.handover``); a crashed run's files in it are never adopted (only those
    a BATCH message names are) and go with the tree at the publish or a prune.
    """
    staging.mkdir(parents=True, exist_ok=True)
    for child in staging.iterdir():
        if child == incoming_dir(staging):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


class LFSReader(SingerReader):
    """The Singer messages, and tap-postgres-native's own two.

    ``LEFT_OUT``: the source's tables the run does not extract; ``BOOKMARKS``: each
    incremental table's window of the day (``pipeline.days.bookmarks``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.left_out: list[dict[str, str]] | None = None  # None: the tap sent no such message
        self.bookmarks: dict[str, dict] | None = None

    def process_lines(self, file_input: IO[str] | None, callbacks: dict[str, Callable[[dict], None]]) -> Counter[str]:
        """The SDK's reading of the messages, with a callback for each of the two more; others are refused as before."""
        return super().process_lines(
            file_input, {**callbacks, LEFT_OUT_MESSAGE: self._left_out, BOOKMARKS_MESSAGE: self._bookmarks}
        )

    def _left_out(self, message_dict: dict) -> None:
        self.left_out = message_dict["tables"]

    def _bookmarks(self, message_dict: dict) -> None:
        self.bookmarks = message_dict["tables"]


class TargetLFS(TargetCSV):
    """target-csv writing one day's tables as PostgreSQL-CSV day folders of a job's staging tree."""

    name = "target-lfs"
    package_name = "target-lfs"
    default_sink_class = LFSSink
    message_reader_class = LFSReader

    config_jsonschema = th.PropertiesList(
        th.Property(
            "data_dir",
            th.StringType,
            description="Root of the dated files (relative: to the Meltano project root), or s3://bucket/prefix.",
        ),
        th.Property("pipeline_date", th.StringType, description="The day the run writes, YYYY-MM-DD."),
        th.Property("job", th.StringType, description="The Meltano job: names the staging tree and receipt."),
        th.Property(
            "folder_template",
            th.StringType,
            description="Day folder of a table under the data dir, with {table} and {date}.",
        ),
        th.Property(
            "source",
            th.StringType,
            description="The source the job reads: postgres (tables named by x-source-schema/x-source-table) or csv.",
        ),
        th.Property("batch_size_rows", th.IntegerType, description="Rows held in memory per table before writing."),
    ).to_dict()

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        # Everything is checked before anything is written.
        self.day = parse_pipeline_date(self.config.get("pipeline_date"))
        data_dir = data_root(required_setting(self.config, "data_dir", "DATA_DIR"))
        self.job = required_setting(self.config, "job", "the plugin's config")
        self.folder_template = required_setting(self.config, "folder_template", "the plugin's config")
        self.source = required_setting(self.config, "source", "the plugin's config")
        if self.source not in SOURCES:
            raise PipelineError(f"target-lfs setting source is {self.source!r}; set it to one of {', '.join(SOURCES)}")
        verify(data_dir)
        self.day_files = DayFileSettings(data_dir, self.day, self.job, self.folder_template)
        self.object_store = is_object_store(data_dir)
        self.staging = staging_root(data_dir, self.job, self.day)
        self._tables: dict[str, LFSSink] = {}
        hold_run_lock(self.job, self.day)  # no other run of the job and day writes while this one does
        if self.object_store:  # every run writes its own folders (pipeline.days.handover, pipeline.days.object_store)
            begin_run(data_dir, self.job, self.day, run_owner().token)
        else:
            reset_staging(self.staging)

    def claim_table(self, sink: LFSSink) -> None:
        """Register the sink that writes ``sink.key``; refuse a second one in the same run."""
        previous = self._tables.get(sink.key)
        if previous is not None:
            raise PipelineError(
                f"table {sink.table!r} (folder {sink.key}) was already written in this run by stream "
                f"{previous.stream_name!r}; refusing to overwrite it for a new SCHEMA of stream {sink.stream_name!r}"
            )
        self._tables[sink.key] = sink

    def process_endofpipe(self) -> None:
        """Drain every sink, then write each day folder's metadata, ``_SUCCESS`` last; what was left out; the windows.

        Locally in the staging tree; in an object store in the run's folders, which
        the run's note then lists with what was left out and the incremental tables'
        windows, for the publish (``pipeline.days.object_store.finish_run``).
        """
        super().process_endofpipe()
        reader: LFSReader = self.message_reader  # type: ignore[assignment]
        folders: dict[str, list[LFSSink]] = defaultdict(list)
        for sink in self._tables.values():
            folders[str(sink.folder)].append(sink)
        for _, sinks in sorted(folders.items()):
            folder = sinks[0].folder
            write_folder_metadata(folder, [sink.table_file() for sink in sorted(sinks, key=lambda s: s.key)])
            self.logger.info("Staged %s (%s)", folder, ", ".join(sorted(s.key for s in sinks)))
        if self.object_store:
            root = str(self.day_files.data_dir).rstrip("/") + "/"
            written = [name.removeprefix(root) for name in folders]
            note = (reader.left_out or [], reader.bookmarks or {})
            finish_run(self.day_files.data_dir, self.job, self.day, run_owner().token, written, *note)
            return
        for name, content in ((LEFT_OUT_FILE, reader.left_out), (BOOKMARKS_FILE, reader.bookmarks)):
            if content is not None:
                write_text_atomic(self.staging / name, dump_json(content))


def main() -> None:
    """Run the target; bad input ends it with one line on stderr."""
    run_plugin_cli("target-lfs", TargetLFS.cli)
