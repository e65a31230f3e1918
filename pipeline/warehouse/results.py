"""Where the day's exported result lives, and how a new one replaces the old without a reader seeing half.

Two protocols, one per kind of ``DATA_DIR`` (``pipeline.core.store``):

- **local disk** (unchanged): the files are written into a temporary folder
  ``results/.{day}.{uuid}.tmp`` that then replaces ``results/{day}/`` as a whole (two
  renames), so a reader sees the old pair of files or the new pair;
- **object storage**, where nothing is renamed: the files are written once, at their
  final keys under a folder of their run, ``results/{day}/{run}/{name}`` (``{run}`` is
  ``pipeline.core.run_owner.run_owner().token``), then the small *result receipt*
  ``results/{day}/_result.json`` naming that folder with each file's sha256 and size
  is written last, by a conditional put (on the ETag of the receipt it replaces, or
  absent). Readers trust only the receipt (:func:`result_files`). Once it is in
  place, the day's other run folders (the replaced result, leftovers of a cut-short
  export) are removed. A rerun whose files are byte-identical to the current result
  removes its own folder and leaves the receipt as it is, so identical reruns leave
  identical objects.

Everything of a day's result is under ``results/{day}/`` on both backends, which is
what retention removes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.core import store
from pipeline.core.errors import PipelineError, TransientPipelineError, first_line
from pipeline.core.files import dump_json
from pipeline.core.run_owner import run_owner

RESULTS_DIR = "results"
RESULT_RECEIPT = "_result.json"
# Objects are written in parts of this size (s3fs buffers a whole part; its default is 50 MiB).
PART_BYTES = 8 << 20


def day_results(data_dir: Path, day: dt.date) -> Path:
    """The folder (or key prefix) that holds everything of ``day``'s result."""
    return data_dir / RESULTS_DIR / day.isoformat()


def result_files(data_dir: Path, day: dt.date, names: list[str]) -> dict[str, Path] | None:
    """The day's published result files by name; None when the day has no result.

    On object storage the receipt says where they are; locally they are in the day's
    folder. In a bucket, files right in the day's folder, with no receipt, are a local
    result copied in when the installation moved (README: Object storage): whole, since
    no export writes there; the day's next export replaces them.
    """
    folder = day_results(data_dir, day)
    if store.is_object_store(data_dir) and (receipt := _read_receipt(folder)) is not None:
        folder = data_dir / receipt["folder"]
    files = {name: folder / name for name in names}
    return files if all(path.is_file() for path in files.values()) else None


class _Hashing(io.RawIOBase):
    """Passes every write on to ``out``, hashing and counting it: the receipt's sha256 without a second read."""

    def __init__(self, out: BinaryIO) -> None:
        super().__init__()
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.digest.update(data)
        self.out.write(data)
        self.size += len(data)
        return len(data)


class ResultDraft:
    """The files of a new result, written where no reader looks until :meth:`commit`."""

    def __init__(self, data_dir: Path, day: dt.date) -> None:
        self.data_dir = data_dir
        self.day = day
        self.target = day_results(data_dir, day)
        self.on_store = store.is_object_store(data_dir)
        if self.on_store:
            self.folder = self.target / run_owner().token
        else:
            self.folder = self.target.with_name(f".{self.target.name}.{uuid.uuid4().hex}.tmp")
        self.files: dict[str, dict[str, Any]] = {}

    def start(self) -> None:
        """Remove what an interrupted export left, and make room for the new files."""
        if self.on_store:
            current = _read_receipt(self.target)
            named = current["folder"].rsplit("/", 1)[-1] if current else None
            for leftover in _run_folders(self.target):
                if leftover.name != named:
                    store.remove_tree(leftover)
            return
        if self.target.parent.is_dir():
            for leftover in self.target.parent.glob(f".{self.target.name}.*"):
                shutil.rmtree(leftover, ignore_errors=True)
        self.folder.mkdir(parents=True)

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[BinaryIO]:
        """``name`` of the new result, open for binary writing (on object storage: hashed as it is written)."""
        path = self.folder / name
        if not self.on_store:
            with path.open("wb", buffering=0) as out:
                yield out
            return
        with path.open("wb", block_size=PART_BYTES) as out:
            hashing = _Hashing(out)
            yield hashing  # type: ignore[misc]
        self.files[name] = {"sha256": hashing.digest.hexdigest(), "bytes": hashing.size}

    def discard(self) -> None:
        """Remove the draft (a failed or cut-short export)."""
        store.remove_tree(self.folder)

    def commit(self, check: Callable[[], None], rows: int) -> None:
        """Make the draft the day's result; ``check`` (the run still holds the day) runs right before."""
        if not self.on_store:
            check()
            _replace_folder(self.folder, self.target)
            return
        current, etag = _read_receipt_and_etag(self.target)
        if current is not None and current.get("files") == self.files:
            self.discard()  # byte-identical: the published objects and their receipt stay as they are
            return
        folder = self.folder.relative_to(self.data_dir).as_posix()
        content = {
            "date": self.day.isoformat(),
            "folder": folder,
            "rows": rows,
            "files": dict(sorted(self.files.items())),
        }
        check()
        _put_receipt(self.target / RESULT_RECEIPT, dump_json(content).encode(), etag)
        for old in _run_folders(self.target):
            if old.name != self.folder.name:
                store.remove_tree(old)


def remove_result(data_dir: Path, day: dt.date, check: Callable[[], None]) -> None:
    """Remove the day's result (a day that has none now); ``check`` runs right before."""
    target = day_results(data_dir, day)
    check()
    if store.is_object_store(data_dir):
        (target / RESULT_RECEIPT).unlink(missing_ok=True)  # first: no receipt ever names a removed object
        store.remove_tree(target)
    else:
        _replace_folder(None, target)


def _replace_folder(tmp: Path | None, folder: Path) -> None:
    """Put ``tmp`` in place of ``folder`` (None: just remove ``folder``)."""
    old = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.old")
    if folder.exists():
        os.replace(folder, old)
    if tmp is not None:
        os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def _run_folders(target: Path) -> list[Path]:
    """The run folders under a day's result prefix on object storage."""
    try:
        return [child for child in target.iterdir() if child.name != RESULT_RECEIPT]
    except (FileNotFoundError, NotADirectoryError):  # no such prefix yet
        return []


def _read_receipt(target: Path) -> dict[str, Any] | None:
    return _read_receipt_and_etag(target)[0]


def _read_receipt_and_etag(target: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The day's result receipt and its ETag (for the conditional put that replaces it); None, None: none."""
    receipt = target / RESULT_RECEIPT
    found = store.read_versioned(receipt)
    if found is None:
        return None, None
    data, etag = found
    try:
        return json.loads(data), etag
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{receipt} is not valid JSON: {exc}; remove it and rerun the export") from exc


def _put_receipt(receipt: Path, data: bytes, etag: str | None) -> None:
    """Write the receipt only over the one read (or where there was none): two exports never cross unseen.

    Losing that race (another export of the day committed since the read, which its
    run lock and fencing check should have kept out) is transient: a rerun exports anew.
    """
    try:
        if etag is None:
            store.put_if_absent(receipt, data)
        else:
            store.put_if_match(receipt, data, etag)
    except store.ConflictError as exc:
        raise TransientPipelineError(f"{first_line(exc)}; this export's result is dropped: rerun it") from exc
