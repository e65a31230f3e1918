"""Step 1 writes each byte once: the tap writes a table's file where the day's file will be, the target adopts it.

Why: a tap that writes a batch file which target-lfs then reads again, counts, hashes
and copies into the day file writes every byte twice (step 1 at 0.37x of ``COPY TO``).
Instead the tap writes the table's file in its final form (target-lfs's header line,
then the rows) where the target can take it without a copy, hashing the bytes as they
stream past, and tells the target the row count and the sha256 (``tap_file``):

* on local disk, in the job's staging tree, ``.staging/{job}/{day}/.incoming/{run}/{key}.csv``:
  the same file system as the table's staged folder, so the target adopts the file by
  a rename. ``.incoming`` survives the target's reset of the tree (the tap may already
  be writing there) and goes with the tree at the publish or a prune; a killed run's
  partial file stays there, where nothing reads it;
* in an object store, at its final key in the run's folder of the table's day folder,
  ``{DATA_DIR}/{folder}/{run}/{key}.csv`` (docs/architecture.md): the target adopts it
  by its key and writes the folder's metadata beside it. The object is one multipart
  upload, completed only when the whole file is written (``written_once``): a failed
  or killed write leaves no object, a completed one no receipt names until the publish.

``{run}`` is ``pipeline.core.run_owner.run_owner().token``, the same in every process of one
``meltano run``. The hand-over is the BATCH message of singer-sdk's public API (a
stream's ``get_batches`` yields a manifest of URIs, a sink's ``process_batch_files``
gets them): each URI carries the row count and the sha256 in its fragment
(``#rows=4&sha256=...``, ``Handover``), which leaves the file's address as it is.

The tap's settings for this are target-lfs's own (``DayFileSettings``): the data dir,
the day, the job, the folder template; the target refuses a file that is not where
these say.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import queue
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urldefrag, urlencode

from upath import UPath

from pipeline.core.crashpoints import pause_point
from pipeline.core.dates import parse_pipeline_date
from pipeline.core.errors import PipelineError
from pipeline.core.files import batch_file_path
from pipeline.core.run_owner import run_owner
from pipeline.core.store import data_root, is_object_store, open_path, verify
from pipeline.days.layout import data_file_name, day_folder, staging_root

INCOMING_DIR = ".incoming"
# The settings a tap needs to write where target-lfs adopts from, named and meant as target-lfs's:
# set, each table is written once as its day file and handed over; unset, the tap sends RECORDs.
SETTINGS = {
    "data_dir": "Root of the dated files (relative: to the Meltano project root); set: day-file mode.",
    "pipeline_date": "The day the run writes, YYYY-MM-DD (target-lfs's).",
    "job": "The Meltano job, in whose staging tree the files are written (target-lfs's).",
    "folder_template": "Day folder of a table under the data dir, with {table} and {date} (target-lfs's).",
}
_BLOCK = 1 << 20
_VERIFIED: set[str] = set()  # the data dirs this process has verified (see _verify_once)
# Blocks of _BLOCK that may wait for the writing thread (see _Digest).
_QUEUED_BLOCKS = 4
# What an object store is asked for to read a header line (s3fs reads ahead a whole block).
_HEADER_BLOCK = 1 << 16
# A day file's part in a multipart upload: what the tap holds in memory per table (s3fs's default is 50 MiB).
OBJECT_PART_BYTES = 8 << 20


@dataclasses.dataclass(frozen=True)
class DayFileSettings:
    """Where a job's day files go: the same four settings in the tap and in target-lfs."""

    data_dir: Path | UPath
    day: dt.date
    job: str
    folder_template: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any], plugin: str) -> DayFileSettings | None:
        """The settings, or None when ``data_dir`` is not set (the tap then sends RECORD messages).

        Any of the others missing is refused in one line naming it (Meltano turns an
        unset variable into "").
        """
        if not config.get("data_dir"):
            return None
        for name in SETTINGS:
            if not config.get(name):
                raise PipelineError(f"{plugin} setting {name} is not set, but data_dir is (give both, or neither)")
        settings = cls(
            data_dir=data_root(str(config["data_dir"])),
            day=parse_pipeline_date(str(config["pipeline_date"])),
            job=str(config["job"]),
            folder_template=str(config["folder_template"]),
        )
        _verify_once(str(settings.data_dir), settings.data_dir)
        return settings

    def day_path(self, key: str) -> Path | UPath:
        """The published day folder of table ``key``."""
        return self.data_dir / day_folder(self.folder_template, key, self.day)


def _verify_once(name: str, data_dir: Path | UPath) -> None:
    """``store.verify`` once per process: a missing bucket is refused in one line before a tap writes.

    Without it a tap's first put could meet a server that creates the bucket on the fly.
    """
    if name not in _VERIFIED:
        verify(data_dir)
        _VERIFIED.add(name)


def incoming_dir(staging: Path) -> Path:
    """The folder of a local staging tree where taps write, which the target's reset of the tree leaves alone."""
    return staging / INCOMING_DIR


def tap_file(settings: DayFileSettings, key: str) -> Path | UPath:
    """Where the tap writes table ``key``: locally in the staging tree's ``.incoming``, in a store at its final key."""
    run = run_owner().token
    if is_object_store(settings.data_dir):
        return settings.day_path(key) / run / data_file_name(key)
    return incoming_dir(staging_root(settings.data_dir, settings.job, settings.day)) / run / data_file_name(key)


def file_uri(path: Path | UPath) -> str:
    """The URI of a day file for a manifest: ``file://...`` locally, ``s3://bucket/key`` in a store."""
    return str(path) if is_object_store(path) else path.as_uri()


def path_of(uri: str) -> Path | UPath:
    """The day file a manifest's URI names (``file_uri``'s inverse), in its store."""
    return batch_file_path(uri) if uri.startswith("file:") else open_path(uri, "a BATCH message's file")


@contextlib.contextmanager
def written_once(path: Path | UPath) -> Iterator[DigestWriter]:
    """Write a day file once, hashed on the way; on any failure nothing is left where a reader looks.

    Locally the partial file is removed (a killed process leaves it in ``.incoming``).
    In a store the object appears only when the whole file is written: a small one is
    one put at the end, a larger one a multipart upload that only the end completes; a
    failure discards it, a killed process leaves an incomplete upload, never an object.
    """
    if not is_object_store(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("wb") as out, DigestWriter(out) as digest:
                yield digest
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return
    upload = path.fs.open(path.path, "wb", block_size=OBJECT_PART_BYTES)
    try:
        with DigestWriter(upload) as digest:
            yield digest
        upload.close()  # one put for a small file; a larger one's multipart upload is completed
    except BaseException:
        upload.discard()  # aborts the multipart upload, drops the buffer: no object
        upload.closed = True  # so that nothing commits it later
        raise


def read_header(path: Path | UPath) -> bytes:
    """The header line of a day file, even when a quoted column name holds a line break; only the header is read."""
    with path.open("rb", block_size=_HEADER_BLOCK) if is_object_store(path) else path.open("rb") as source:
        header = source.readline()
        while header.count(b'"') % 2 and (more := source.readline()):
            header += more
    return header


@dataclasses.dataclass(frozen=True)
class Handover:
    """A table file the tap wrote, with what it counted while writing: a manifest entry of a BATCH message."""

    uri: str
    rows: int
    sha256: str

    def manifest_entry(self) -> str:
        """The file's URI with the row count and sha256 in its fragment."""
        return f"{self.uri}#{urlencode({'rows': self.rows, 'sha256': self.sha256})}"

    @classmethod
    def from_manifest_entry(cls, entry: str) -> Handover | None:
        """The hand-over in a manifest entry; None for an ordinary batch file (no figures in its fragment)."""
        uri, fragment = urldefrag(entry)
        fields = parse_qs(fragment)
        if not fields:
            return None
        try:
            (rows,), (sha256,) = fields["rows"], fields["sha256"]
            return cls(uri=uri, rows=int(rows), sha256=sha256)
        except (KeyError, ValueError) as exc:
            raise PipelineError(f"batch file {entry}: its fragment is not rows=<n>&sha256=<hex>") from exc


class _Digest(io.RawIOBase):
    """A raw stream that hashes what passes through to ``out``, in a thread of its own.

    Why a thread: the hash and the write (in a bucket, a part's upload) then run beside
    the COPY that produces the next blocks instead of between them; both release the
    GIL. At most ``_QUEUED_BLOCKS`` blocks wait, so memory stays bounded.
    """

    def __init__(self, out: BinaryIO) -> None:
        super().__init__()
        self._out = out
        self._digest = hashlib.sha256()
        self._blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUED_BLOCKS)
        self._failure: BaseException | None = None
        self._worker: threading.Thread | None = threading.Thread(target=self._drain, daemon=True)
        self._worker.start()

    def writable(self) -> bool:
        return True

    def write(self, block: Any) -> int:  # type: ignore[override]
        """Queue a copy of the block (the caller reuses its buffer) for hashing and writing."""
        self._raise_failure()
        data = bytes(block)
        self._blocks.put(data)
        return len(data)

    def _drain(self) -> None:
        """Hash and write each queued block in order; after a failure only empty the queue."""
        while (block := self._blocks.get()) is not None:
            if self._failure is not None:
                continue
            try:
                self._digest.update(block)
                self._out.write(block)
                pause_point("day-file")
            except BaseException as exc:  # raised in the writing thread, at its next write or at the end
                self._failure = exc

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def finish(self) -> str:
        """Wait until every queued block is written; the hex sha256 of them all."""
        if self._worker is not None:
            self._blocks.put(None)
            self._worker.join()
            self._worker = None
        self._raise_failure()
        return self._digest.hexdigest()

    def close(self) -> None:
        """Stop the thread (whatever is queued is still written); ``out`` stays open."""
        if self._worker is not None:
            self._blocks.put(None)
            self._worker.join()
            self._worker = None
        super().close()


class DigestWriter(io.BufferedWriter):
    """Writes to ``out`` in blocks of 1 MiB, hashing them on the way; closing it leaves ``out`` open.

    Why buffered: a driver's COPY writes one call per row; buffered in C, the hash
    (and the Python code around it) sees a few calls per MiB instead.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._digest = _Digest(out)
        super().__init__(self._digest, buffer_size=_BLOCK)

    def sha256(self) -> str:
        """The hex sha256 of everything written (flushed first, and written through to ``out``)."""
        self.flush()
        return self._digest.finish()
