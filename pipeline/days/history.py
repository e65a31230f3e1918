"""Kept versions of step-1 days: a rerun never silently destroys the extract it replaces.

When a step-1 publish replaces a day that already has a receipt, the published version
(its receipt and every folder the receipt lists) is moved, by renames on the same file
system, to::

    _history/{job}/{date}/{version}/receipt.json
    _history/{job}/{date}/{version}/{folder as published, e.g. postgres/orders/{date}}/

``version`` is the replaced receipt's publish time (its mtime, UTC, e.g.
``20240301T101500.123456Z``), so versions sort by age. Once the new receipt is written,
every kept version that is the same day (same checksums of every file: a byte-identical
rerun) is dropped: there is nothing to restore from it. ``restore`` puts a kept
version back in place (keeping the one it replaces as a version in turn); retention
(``pipeline.retention``) removes the versions of old days.

Why this order of renames is crash-safe: the receipt moves first, in one rename, into
the version folder; from then on the version folder's receipt says which folders
belong to it, each identified by its metadata checksums, and each such folder is
either still at its published place or already in the version folder. ``repair``
(run first by every publish, restore and prune of the day) finishes any such move,
moving a folder only when its checksums are the kept receipt's. A restore moves the
other way (folders first, the receipt last), so a restore cut short is undone by the
same repair: the version is complete again and can be restored again. At every point
the day is either published (old or new version) or has no receipt, which step 2
refuses; no version is ever lost.

In an object store nothing moves: a version is its kept receipt alone, its objects stay
where they were written, and a restore puts the receipt back (``pipeline.days.object_store``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.core.crashpoints import pause_point
from pipeline.core.errors import PipelineError
from pipeline.core.files import read_json
from pipeline.days.bookmarks import refuse_moved_windows
from pipeline.days.folder import metadata_checksums
from pipeline.days.layout import TRASH_DIR, receipt_path

HISTORY_DIR = "_history"
RECEIPT_FILE = "receipt.json"


def history_root(data_dir: Path, job: str, day: dt.date) -> Path:
    """Where the kept versions of ``job``'s ``day`` live."""
    return data_dir / HISTORY_DIR / job / day.isoformat()


def kept_versions(data_dir: Path, job: str, day: dt.date) -> list[str]:
    """The kept versions of ``job``'s ``day``, oldest first."""
    root = history_root(data_dir, job, day)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / RECEIPT_FILE).is_file())


def folders_of(content: dict[str, Any]) -> dict[str, dict[str, str]]:
    """A receipt's folders (relative to the data dir) with their metadata checksums."""
    return content.get("folders") or {}


def matches(folder: Path, expected: dict[str, str]) -> bool:
    """Whether ``folder`` holds metadata with exactly the checksums a receipt lists."""
    if not folder.is_dir() or not all((folder / name).is_file() for name in expected):
        return False
    return metadata_checksums(folder) == expected


def _remove_empty_tree(path: Path) -> None:
    """Remove ``path`` if it holds nothing but empty folders (what a finished move leaves)."""
    if not path.is_dir():
        return
    for parent, folders, _ in os.walk(path, topdown=False):
        for name in folders:
            with contextlib.suppress(OSError):  # not empty: something is still kept there
                (Path(parent) / name).rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


def _complete(data_dir: Path, version: Path, check: Callable[[], None]) -> None:
    """Move into ``version`` each of its receipt's folders still (or again) at its published place.

    ``check`` (that the run still holds the day: ``pipeline.runs.locks.fenced``) runs before each move.
    """
    for relative, expected in sorted(folders_of(read_json(version / RECEIPT_FILE)).items()):
        kept, published = version / relative, data_dir / relative
        if not kept.exists() and matches(published, expected):
            kept.parent.mkdir(parents=True, exist_ok=True)
            check()
            os.replace(published, kept)
            pause_point("history-move")


def repair(data_dir: Path, job: str, day: dt.date, check: Callable[[], None]) -> None:
    """Finish any move into or out of the history of ``job``'s ``day`` that a crash cut short."""
    root = history_root(data_dir, job, day)
    if not root.is_dir():
        return
    for version in sorted(p for p in root.iterdir() if p.is_dir()):
        if (version / RECEIPT_FILE).is_file():
            _complete(data_dir, version, check)
        else:
            _remove_empty_tree(version)  # a move that had not begun, or a restore that had finished


def new_version(root: Path, receipt: Path) -> Path:
    """A fresh version folder named by the publish time of ``receipt``."""
    published = dt.datetime.fromtimestamp(receipt.stat().st_mtime, dt.UTC)
    name = published.strftime("%Y%m%dT%H%M%S.%fZ")
    version, suffix = root / name, 1
    while version.exists():
        version, suffix = root / f"{name}-{suffix}", suffix + 1
    return version


def keep_published(data_dir: Path, job: str, day: dt.date, check: Callable[[], None]) -> Path | None:
    """Move the published version of ``job``'s ``day`` into its history; returns where (None: none published).

    Afterwards the day has no receipt and none of the kept folders is in place.
    """
    repair(data_dir, job, day, check)
    receipt = receipt_path(data_dir, job, day)
    if not receipt.is_file():
        return None
    version = new_version(history_root(data_dir, job, day), receipt)
    version.mkdir(parents=True)
    check()
    os.replace(receipt, version / RECEIPT_FILE)
    _complete(data_dir, version, check)
    return version


def same_day(kept: dict[str, Any], published: dict[str, Any]) -> bool:
    """Whether two receipts are the same day, file for file (in an object store, whatever the run folders' names).

    Every table with the same file, rows and sha256, the same metadata checksums and
    the same tables left out.
    """

    def content(receipt: dict[str, Any]) -> tuple[list[Any], list[Any], Any]:
        tables = {key: {k: v for k, v in entry.items() if k != "folder"} for key, entry in receipt["tables"].items()}
        metadata = sorted(sorted(checksums.items()) for checksums in folders_of(receipt).values())
        return sorted(tables.items()), metadata, receipt.get("left_out") or []

    return content(kept) == content(published)


def drop_identical(data_dir: Path, job: str, day: dt.date, published: dict[str, Any]) -> None:
    """Drop every kept version of ``job``'s ``day`` that is the newly ``published`` receipt's day, file for file.

    The receipt covers every file of the day by checksum, so such a copy would be the
    published day once more: a byte-identical rerun keeps nothing, and neither does the
    rerun after a publish that was killed once it had kept the version.
    """
    root = history_root(data_dir, job, day)
    for name in kept_versions(data_dir, job, day):
        kept = read_json(root / name / RECEIPT_FILE)
        if same_day(kept, published):
            shutil.rmtree(root / name)
    _remove_empty_tree(root)


def chosen_version(data_dir: Path, job: str, day: dt.date, version: str | None) -> str:
    """The kept ``version`` of ``job``'s ``day`` to restore (None: the newest); refuses one that is not kept."""
    available = kept_versions(data_dir, job, day)
    if not available:
        raise PipelineError(f"{job} has no kept version of {day} (nothing under {history_root(data_dir, job, day)})")
    name = version or available[-1]
    if name not in available:
        raise PipelineError(f"{job} has no kept version {name!r} of {day}; kept: {', '.join(available)}")
    return name


def restore(data_dir: Path, job: str, day: dt.date, name: str, check: Callable[[], None]) -> Path | None:
    """Move the kept version ``name`` of ``job``'s ``day`` back in place (local disk; ``repair`` first).

    The version published until now is kept in turn. A version whose incremental
    windows differ while a later day has a receipt is refused (``pipeline.days.bookmarks``).
    Returns where the replaced version was kept (None if the day had no receipt). ``check``
    runs before each move, as in a publish.
    """
    source = history_root(data_dir, job, day) / name
    content = read_json(source / RECEIPT_FILE)
    if missing := [rel for rel, expected in sorted(folders_of(content).items()) if not matches(source / rel, expected)]:
        raise PipelineError(f"{source} cannot be restored: {', '.join(missing)} missing or changed")
    refuse_moved_windows(data_dir, job, day, content)
    replaced = keep_published(data_dir, job, day, check)
    trash = data_dir / TRASH_DIR / uuid.uuid4().hex
    for relative in sorted(folders_of(content)):
        destination = data_dir / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        check()
        if destination.exists():  # left by a publish cut short: in no receipt
            trash.mkdir(parents=True, exist_ok=True)
            os.replace(destination, trash / uuid.uuid4().hex)
        os.replace(source / relative, destination)
    check()
    os.replace(source / RECEIPT_FILE, receipt_path(data_dir, job, day))
    _remove_empty_tree(source)
    shutil.rmtree(trash, ignore_errors=True)
    return replaced
