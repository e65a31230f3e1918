"""Step 1 writes each byte once: the tap writes a table's file where the day's file will be, the target adopts it.

Why: a tap that writes a batch file which target-lfs then reads again, counts, hashes
and copies into the day file writes every byte twice (step 1 at 0.37x of ``COPY TO``).
Instead the tap writes the table's file in its final form (target-lfs's header line,
then the rows) at a place the target can take it from without a copy, counting and
hashing the bytes as they stream past, and tells the target both figures:

* on local disk, in the job's staging tree, ``.staging/{job}/{day}/.incoming/{run}/{key}.csv``
  (``incoming_file``): the same file system as the table's staged folder, so the
  target adopts the file by a rename. ``.incoming`` survives the target's reset of the
  tree (the tap may already be writing there), and goes with the tree at the publish
  or a prune; a killed run's partial file stays there, where nothing reads it;
* the hand-over is the BATCH message of singer-sdk's public API (a stream's
  ``get_batches`` yields a manifest of URIs, a sink's ``process_batch_files`` gets
  them): each URI carries the row count and the sha256 in its fragment
  (``#rows=4&sha256=...``, ``Handover``), which names no other resource and leaves the
  file's address as it is. A manifest entry without them is an ordinary batch file.

The tap's settings for this are target-lfs's own (``DayFileSettings``): the data dir,
the day, the job, the folder template; the target refuses a file that is not where
these say.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urldefrag, urlencode

from pipeline.crashpoints import pause_point
from pipeline.dates import parse_pipeline_date
from pipeline.errors import PipelineError
from pipeline.lfs import data_file_name, resolve_data_dir, staging_root

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


@dataclasses.dataclass(frozen=True)
class DayFileSettings:
    """Where a job's day files go: the same four settings in the tap and in target-lfs."""

    data_dir: Path
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
        return cls(
            data_dir=resolve_data_dir(str(config["data_dir"])),
            day=parse_pipeline_date(str(config["pipeline_date"])),
            job=str(config["job"]),
            folder_template=str(config["folder_template"]),
        )


def incoming_dir(staging: Path) -> Path:
    """The folder of a staging tree where taps write, which the target's reset of the tree leaves alone."""
    return staging / INCOMING_DIR


def incoming_file(settings: DayFileSettings, run: str, key: str) -> Path:
    """Where the tap writes table ``key`` on local disk: the job's staging tree, one folder per tap run."""
    return incoming_dir(staging_root(settings.data_dir, settings.job, settings.day)) / run / data_file_name(key)


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
    """A raw stream that hashes what passes through to ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        super().__init__()
        self._out = out
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, block: Any) -> int:  # type: ignore[override]
        """Hash the block, then write all of it."""
        self.digest.update(block)
        self._out.write(block)
        pause_point("day-file")
        return len(block)


class DigestWriter(io.BufferedWriter):
    """Writes to ``out`` in blocks of 1 MiB, hashing them on the way; closing it leaves ``out`` open.

    Why buffered: a driver's COPY writes one call per row; buffered in C, the hash
    (and the Python code around it) sees a few calls per MiB instead.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._digest = _Digest(out)
        super().__init__(self._digest, buffer_size=_BLOCK)

    def sha256(self) -> str:
        """The hex sha256 of everything written so far (flushed first)."""
        self.flush()
        return self._digest.digest.hexdigest()
