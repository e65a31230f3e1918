"""Generic file helpers: atomic writes, hashing, JSON files, batch-file URIs.

Nothing here knows about days, jobs or tables (that is ``pipeline.days.layout``, the
day-folder contract); these are the few file operations every writer of the
project needs done the same way: readers see a whole file or the old one, never
half, and a broken or missing file is refused with its path in the message.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pipeline.core.errors import PipelineError
from pipeline.core.store import is_object_store, sha256_of


def batch_file_path(uri: str) -> Path:
    """The local path of a BATCH message's ``file://`` manifest entry (the only kind the plugins hand over)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise PipelineError(f"batch file {uri} is not a local file:// path")
    return Path(unquote(parsed.path))


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file (or object), read in blocks so any size fits in memory: ``store.sha256_of``."""
    return sha256_of(path)


def dump_json(obj: Any) -> str:
    """JSON text for metadata files.

    Keys keep their order (a schema's properties are the table's column order); the
    callers build their dicts in a deterministic order, so a rerun of a day writes
    byte-identical metadata.
    """
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new, never half.

    Locally through a temporary file and a rename; in an object store one put is atomic.
    """
    if is_object_store(path):
        path.write_text(text, encoding="utf-8")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """Read a metadata file, with an error that names it when it is missing or broken."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PipelineError(f"{path} is missing") from exc
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path} is not valid JSON: {exc}") from exc
