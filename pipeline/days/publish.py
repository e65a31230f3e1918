"""Publishing a job's day: its staged folders moved into place, then its receipt written; or a kept version again.

On local disk by renames (below, and ``pipeline.days.history`` for the versions a publish
replaces); in an object store by the receipt alone (``pipeline.days.object_store``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.core.commands import rerun_command
from pipeline.core.crashpoints import pause_point
from pipeline.core.errors import PipelineError
from pipeline.core.files import dump_json, read_json, write_text_atomic
from pipeline.core.store import is_object_store
from pipeline.days import object_store
from pipeline.days.bookmarks import add_windows, staged_bookmarks
from pipeline.days.folder import describe_folders
from pipeline.days.history import chosen_version, drop_identical, keep_published, repair, restore
from pipeline.days.layout import LEFT_OUT_FILE, SUCCESS_FILE, TRASH_DIR, receipt_path, staging_root


def publish_staged_day(data_dir: Path, job: str, day: dt.date, check: Callable[[], None]) -> dict[str, Any]:
    """Move every staged folder of ``job``/``day`` into place, then write the receipt.

    The receipt lists each table (by its key) with its folder and data checksum, and
    each folder with the checksums of its ``_schema.json`` and ``_manifest.json``, so
    step 2 reads exactly what this run wrote, metadata included; and ``left_out``, the
    source's tables the run did not extract (each with its source schema, exact name
    and reason), so that no table is missing from a day without a word. The published version
    goes first (its receipt, then its folders, into the day's history: see
    ``pipeline.days.history``), so while folders are being swapped the day counts as not
    succeeded; each folder is moved by renames on the same file system. ``check`` (that
    the run still holds the day: ``pipeline.runs.locks.fenced``) runs before each change, so
    a run that lost its lock stops before its next rename. Returns the receipt.

    In an object store nothing moves: see ``pipeline.days.object_store.publish``.
    """
    if is_object_store(data_dir):
        return object_store.publish(data_dir, job, day, check)
    staging = staging_root(data_dir, job, day)
    if not staging.is_dir():
        raise PipelineError(
            f"{job} has nothing staged for {day} under {staging}: run the whole job: {rerun_command(job, day)}"
        )
    folders = sorted(marker.parent for marker in staging.rglob(SUCCESS_FILE))
    checksums, tables = describe_folders(job, day, [(f.relative_to(staging).as_posix(), f) for f in folders])

    # Here, not at the top: pipeline.days.history and pipeline.days.bookmarks build on this module.

    add_windows(tables, staged_bookmarks(staging))

    receipt = receipt_path(data_dir, job, day)
    keep_published(data_dir, job, day, check)
    trash = data_dir / TRASH_DIR / uuid.uuid4().hex
    for folder in folders:
        destination = data_dir / folder.relative_to(staging)
        destination.parent.mkdir(parents=True, exist_ok=True)
        check()
        if destination.exists():
            trash.mkdir(parents=True, exist_ok=True)
            os.replace(destination, trash / uuid.uuid4().hex)
        os.replace(folder, destination)
        pause_point("publish-swap")
    left_out = read_json(staging / LEFT_OUT_FILE) if (staging / LEFT_OUT_FILE).is_file() else []
    content = {"job": job, "date": day.isoformat(), "folders": checksums, "tables": tables, "left_out": left_out}
    check()
    write_text_atomic(receipt, dump_json(content))
    drop_identical(data_dir, job, day, content)
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    return content


def restore_version(
    data_dir: Path, job: str, day: dt.date, version: str | None, check: Callable[[], None]
) -> tuple[str, Path | None]:
    """Publish the kept ``version`` (None: the newest) of ``job``'s ``day`` again; the published one is kept in turn.

    Returns the restored version and where the replaced one was kept (None if the day
    had no receipt). ``check`` runs before each change, as in a publish.
    """
    if is_object_store(data_dir):
        name = chosen_version(data_dir, job, day, version)
        return name, object_store.restore(data_dir, job, day, name, check)
    repair(data_dir, job, day, check)  # a restore or publish cut short first completes its version
    name = chosen_version(data_dir, job, day, version)
    return name, restore(data_dir, job, day, name, check)
