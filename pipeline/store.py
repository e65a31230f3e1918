"""PLACEHOLDER until branch s3store's pipeline/store.py is merged: the few calls the read side uses.

Its shape follows the shared design (DATA_DIR as a local path or ``s3://bucket/prefix``,
a ``UPath`` root, conditional puts); the merge takes s3store's module instead of this one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _options(env: Any = None) -> dict[str, Any]:
    env = os.environ if env is None else env
    options: dict[str, Any] = {"key": env.get("AWS_ACCESS_KEY_ID"), "secret": env.get("AWS_SECRET_ACCESS_KEY")}
    if env.get("AWS_ENDPOINT_URL"):
        options["endpoint_url"] = env["AWS_ENDPOINT_URL"]
    if env.get("AWS_REGION"):
        options["client_kwargs"] = {"region_name": env["AWS_REGION"]}
    return options


def data_root(value: str, env: Any = None) -> Path:
    """The data root of ``DATA_DIR`` ``value``."""
    if value.startswith("s3://"):
        from upath import UPath

        return UPath(value, **_options(env))
    path = Path(value)
    if path.is_absolute():
        return path
    return Path(os.environ.get("MELTANO_PROJECT_ROOT") or ".").resolve() / path


def as_path(uri: str, env: Any = None) -> Path:
    """A URI (``file://`` or ``s3://``) as a path."""
    if uri.startswith("s3://"):
        return data_root(uri, env)
    from pipeline.files import batch_file_path

    return batch_file_path(uri)


def is_object_store(path: Any) -> bool:
    return getattr(path, "protocol", "") not in ("", "file", "local")


def remove_prefix(path: Any) -> None:
    if path.fs.exists(path.path):
        path.fs.rm(path.path, recursive=True)


def read_with_etag(path: Any) -> tuple[bytes, str] | None:
    try:
        info = path.fs.info(path.path)
        return path.read_bytes(), info["ETag"]
    except FileNotFoundError:
        return None


def put_if_absent(path: Any, data: bytes) -> None:
    path.fs.pipe_file(path.path, data, mode="create")


def put_if_match(path: Any, data: bytes, etag: str) -> None:
    path.fs.pipe_file(path.path, data, IfMatch=etag)
