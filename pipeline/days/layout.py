"""Where a day's files live under ``DATA_DIR``: the day-folder contract between step 1 and step 2.

Layout under ``DATA_DIR`` (``{date}`` is the run's ``PIPELINE_DATE``)::

    postgres/{key}/{date}/{key}.csv            one folder per table and day
    csv/{date}/{key}.csv                       one folder per day
        each day folder also holds
        _schema.json     per table key: source, source schema, exact table name,
                         key properties and the columns' JSON schemas
        _manifest.json   per table key: file name, row count, byte size, sha256
        _SUCCESS         written last: the folder is complete
    _runs/{job}/{date}.json                    the job's receipt for the day: each
                                               table's folder and sha256 (and an
                                               incremental table's window, its
                                               ``replication``: pipeline.days.bookmarks), each
                                               folder's metadata files' sha256, and
                                               the source's tables left out (left_out)
    .staging/{job}/{date}/...                  where a running job writes
    _history/{job}/{date}/{version}/...        the versions a rerun replaced (pipeline.days.history)

A table's ``key`` is its folder name, ``pipeline.core.names.table_folder`` of its source
schema and name (``orders``, ``%4frders``, ``sales.orders``): a name is data, and only
its encoded form ever becomes part of a path. Days are ``datetime.date`` everywhere
here; only a path or a message turns one into text.

Why a receipt on top of the folders' own markers: a job writes many folders, and
only the receipt says that *all* of them are from one run that succeeded. A job's
writer (the loader) fills its staging tree; a separate publish step, which Meltano
runs only when the extract and the load both exited 0, moves each folder into
place and then writes the receipt. Step 2 reads exactly the tables a receipt lists,
so a crash at any point leaves either the previous complete day or no receipt (and
step 2 refuses the day), never a half-written day that step 2 would read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.core.names import within_bytes
from pipeline.core.store import data_root

SCHEMA_FILE = "_schema.json"
MANIFEST_FILE = "_manifest.json"
SUCCESS_FILE = "_SUCCESS"
RUNS_DIR = "_runs"
STAGING_DIR = ".staging"
TRASH_DIR = ".trash"
# Top-level keys of a stream's SCHEMA message by which tap-postgres-native names the
# table exactly: its stream name ``<schema>-<table>`` cannot be split back.
SOURCE_SCHEMA_KEY = "x-source-schema"
SOURCE_TABLE_KEY = "x-source-table"
# Top-level key of a stream's SCHEMA message by which tap-lfs hands target-analytics a
# table's identity: source, source schema, exact table name, file key, sha256 and rows.
TABLE_IDENTITY_KEY = "x-pipeline-table"
# The message by which tap-postgres-native names the tables it does not extract; target-lfs
# stages them in LEFT_OUT_FILE of the day's staging tree, the publish copies them into the receipt.
LEFT_OUT_MESSAGE = "LEFT_OUT"
LEFT_OUT_FILE = "_left_out.json"
# NAME_MAX of Linux file systems: a longer file or folder name cannot be created.
MAX_FILE_NAME_BYTES = 255


def resolve_data_dir(value: str) -> Path:
    """The data root ``DATA_DIR`` names: a local folder (relative: to the Meltano project root) or an S3 prefix.

    Meltano starts plugins in the caller's working directory, which is not always the
    project root (a user in a subfolder, an orchestrator); Meltano sets
    ``MELTANO_PROJECT_ROOT`` for every plugin it runs. See ``pipeline.core.store``.
    """
    return data_root(value)


def staging_root(data_dir: Path, job: str, day: dt.date) -> Path:
    """Where ``job`` writes its day before the publish step moves it into place."""
    return data_dir / STAGING_DIR / job / day.isoformat()


def receipt_path(data_dir: Path, job: str, day: dt.date) -> Path:
    """The receipt that says ``job`` succeeded for ``day``."""
    return data_dir / RUNS_DIR / job / f"{day.isoformat()}.json"


def day_folder(template: str, table: str, day: dt.date) -> str:
    """The folder (relative to the data dir) of ``table`` for ``day``.

    ``template`` uses ``{table}`` and ``{date}``, e.g. ``postgres/{table}/{date}``.
    """
    if "{date}" not in template:
        raise PipelineError(f"folder template {template!r} has no {{date}}: days would overwrite each other")
    return template.format(table=table, date=day.isoformat())


def data_file_name(key: str) -> str:
    """The data file of table ``key`` (``{key}.csv``), refusing one the file system cannot hold.

    A table in a non-public schema whose names need encoding can exceed the 255
    bytes a Linux file name may have; the refusal names the fix instead of an OSError.
    """
    name = f"{key}.csv"
    return within_bytes(
        name,
        MAX_FILE_NAME_BYTES,
        f"its file name {name[:40]}...",
        f"the file system's {MAX_FILE_NAME_BYTES}; rename the table (or its schema) to something shorter, "
        "or leave it out",
    )
