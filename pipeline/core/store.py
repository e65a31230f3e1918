"""Where the day folders live: ``DATA_DIR`` on local disk or in an S3-compatible bucket.

One setting, two backends. ``DATA_DIR`` is a local path (relative to the project
root, as always) or ``s3://bucket/prefix``; the bucket is reached through fsspec's
s3fs (a maintained client of the field) with the ecosystem's standard settings
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
``AWS_REGION``, from ``.env`` like everything else and never logged. Any other URL
scheme is refused: ``s3a://x`` or ``gs://x`` must not silently become a local folder.

``data_root`` returns a ``universal_pathlib`` path: locally a ``PosixUPath``, which is
a real ``pathlib.Path``, so local code keeps working unchanged; on S3 an ``S3Path``
with the same API (open, read_bytes, exists, iterdir, glob, unlink). Code whose
protocol must differ by backend (renames locally, immutable objects and conditional
puts on S3: see docs/architecture.md) asks ``is_object_store``.

The helpers here are the few operations whose S3 form is not pathlib's: the sha256
of a file or object read as a stream, conditional puts (the commit points where two
writers could meet), a read that returns the bytes with the version (ETag) they
belong to, removing a prefix, and the one-line error for a store that refuses or
cannot be reached (``failure``, which ``pipeline.core.errors.as_pipeline_error`` uses).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from upath import UPath

from pipeline.core.errors import PipelineError, TransientPipelineError, first_line

OBJECT_STORE_SCHEMES = ("s3",)
LOCAL_SCHEMES = ("", "file", "local")
_BLOCK = 8 << 20
# Connection attempts (each a few seconds at most) before an endpoint counts as unreachable:
# the failure is transient, so the orchestrator retries the whole step later.
_CLIENT_CONFIG = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}
# S3 error codes: the bucket is missing, or the credentials are refused (a retry meets both again).
_NO_BUCKET = frozenset({"NoSuchBucket"})
_BAD_CREDENTIALS = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken", "403"}
)
_CONDITION_FAILED = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


class ConflictError(PipelineError):
    """A conditional put found another version than the one it was made on: another writer came first."""


def scheme_of(value: str) -> str:
    """The URL scheme of a ``DATA_DIR``-like value ('' for a plain path; a Windows drive is no concern here)."""
    head, sep, _ = value.partition("://")
    return head.lower() if sep else ""


def storage_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """s3fs's options from the standard ``AWS_*`` settings; unset ones are left to botocore's own lookup."""
    # No listings cache: other processes (the tap, the target, the publish) change the bucket meanwhile.
    options: dict[str, Any] = {"config_kwargs": dict(_CLIENT_CONFIG), "use_listings_cache": False}
    if endpoint := environ.get("AWS_ENDPOINT_URL"):
        options["endpoint_url"] = endpoint
    if key := environ.get("AWS_ACCESS_KEY_ID"):
        options["key"] = key
    if secret := environ.get("AWS_SECRET_ACCESS_KEY"):
        options["secret"] = secret
    if region := environ.get("AWS_REGION"):
        options["client_kwargs"] = {"region_name": region}
    return options


def open_path(value: str, setting: str, environ: Mapping[str, str] | None = None) -> UPath:
    """``value`` (a setting's local path or URL) as a path of its store; another scheme refused naming ``setting``.

    A relative local path is relative to the Meltano project root (Meltano sets
    ``MELTANO_PROJECT_ROOT`` for every plugin; plugins may start elsewhere).
    """
    environ = os.environ if environ is None else environ
    scheme = scheme_of(value)
    if scheme in OBJECT_STORE_SCHEMES:
        if not value.split("://", 1)[1].split("/", 1)[0]:
            raise PipelineError(f"{setting} {value} names no bucket: use s3://bucket/prefix")
        return UPath(value, **storage_options(environ))
    if scheme not in LOCAL_SCHEMES:
        raise PipelineError(f"{setting} {value}: unknown scheme {scheme}://; use a local path or s3://bucket/prefix")
    path = Path(value.split("://", 1)[1] if scheme else value)
    if not path.is_absolute():
        path = Path(environ.get("MELTANO_PROJECT_ROOT") or ".").resolve() / path
    return UPath(path)


def data_root(value: str, environ: Mapping[str, str] | None = None) -> UPath:
    """The data root that ``DATA_DIR`` names (see ``open_path``)."""
    return open_path(value, "DATA_DIR", environ)


def is_object_store(path: Path | UPath) -> bool:
    """Whether ``path`` is in an object store (immutable objects, no renames) rather than on local disk."""
    return not isinstance(path, Path)


def bucket_key(path: UPath) -> tuple[str, str]:
    """The bucket and key of an object-store path."""
    bucket, _, key = path.path.partition("/")
    return bucket, key


def verify(root: Path | UPath) -> None:
    """Fail now, in one line, when the bucket of ``root`` is missing, refuses the credentials or is unreachable.

    Called before a step writes anything, so that a wrong setting is reported as
    such and not as the first write's failure. Nothing to do on local disk.
    """
    if not is_object_store(root):
        return
    bucket, key = bucket_key(root)
    try:
        root.fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=key, MaxKeys=1)
    except Exception as exc:
        raise (failure(exc) or exc) from exc


def sha256_of(path: Path | UPath) -> str:
    """The hex sha256 of a file or object, read as a stream so that any size fits in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def read_versioned(path: Path | UPath) -> tuple[bytes, str] | None:
    """The bytes of a small file or object with its version tag; None when there is none.

    On S3 the tag is the ETag of exactly the bytes read (s3fs reads the object's
    ranges with If-Match on the ETag it opened); locally the sha256 of the bytes.
    A later ``put_if_match`` with this tag replaces only that version.
    """
    try:
        if not is_object_store(path):
            data = path.read_bytes()
            return data, hashlib.sha256(data).hexdigest()
        with path.open("rb") as handle:
            return handle.read(), handle.details["ETag"]
    except FileNotFoundError:
        return None


def put_if_absent(path: Path | UPath, data: bytes) -> None:
    """Create ``path`` with ``data``, atomically and only if nothing is there; else ``ConflictError``.

    On S3 a put with ``If-None-Match: *``; locally a hard link of a complete
    temporary file, which fails when the name exists.
    """
    if is_object_store(path):
        _conditional_put(path, data, IfNoneMatch="*")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    try:
        os.link(tmp, path)
    except FileExistsError as exc:
        raise ConflictError(f"{path} exists already: another run wrote it first") from exc
    finally:
        tmp.unlink()


def put_if_match(path: Path | UPath, data: bytes, version: str) -> None:
    """Replace ``path`` with ``data`` only if it is still the version ``version`` (of ``read_versioned``).

    On S3 a put with ``If-Match``. Locally the check and the rename are two steps:
    the local writers of a day are serialised by its writer lock (``pipeline.runs.locks``),
    which local disk needs for its renames anyway.
    """
    if is_object_store(path):
        _conditional_put(path, data, IfMatch=version)
        return
    current = read_versioned(path)
    if current is None or current[1] != version:
        raise ConflictError(f"{path} changed since it was read: another run wrote it meanwhile")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _conditional_put(path: UPath, data: bytes, **condition: str) -> None:
    """One ``PutObject`` with an S3 condition header; a failed condition becomes ``ConflictError``."""
    bucket, key = bucket_key(path)
    try:
        path.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)
    except Exception as exc:
        if _error_code(exc) in _CONDITION_FAILED or isinstance(exc, FileExistsError):
            raise ConflictError(f"{path} changed since it was read: another run wrote it first") from exc
        raise
    finally:
        path.fs.invalidate_cache(path.path)


def remove_tree(path: Path | UPath) -> None:
    """Remove a folder or prefix with everything under it; nothing if it is gone already."""
    if not is_object_store(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    with contextlib.suppress(FileNotFoundError):
        path.fs.rm(path.path, recursive=True)
    path.fs.invalidate_cache(path.path)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from (s3fs turns a botocore error into an OSError)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _error_code(exc: BaseException) -> str | None:
    """The S3 error code (or HTTP status) of a refused request, wherever it is in the chain."""
    for cause in _causes(exc):
        response = getattr(cause, "response", None)
        if isinstance(response, dict) and "Error" in response:
            error = response["Error"]
            return str(error.get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
    return None


def _unreachable(exc: BaseException) -> bool:
    """Whether the request never got an answer: endpoint down, refused, timed out, connection lost."""
    names = {type(cause).__name__ for cause in _causes(exc)}
    return bool(
        names
        & {
            "EndpointConnectionError",
            "ConnectTimeoutError",
            "ReadTimeoutError",
            "ConnectionClosedError",
            "ClientConnectorError",
            "ServerDisconnectedError",
            "ConnectionRefusedError",
        }
    ) or any(isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED for cause in _causes(exc))


def failure(exc: BaseException) -> PipelineError | None:
    """An object store's refusal or silence as the pipeline's one-line error; None if ``exc`` is not one.

    A missing bucket and refused credentials are permanent (fix the setting); an
    endpoint that does not answer, or answers 5xx or SlowDown, is transient (retried).
    The message names the settings to check, never their secret values.
    """
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or "the default AWS endpoint"
    code = _error_code(exc)
    if code in _NO_BUCKET:
        return PipelineError(
            f"object store at {endpoint} (AWS_ENDPOINT_URL): the bucket of DATA_DIR does not exist "
            f"({first_line(exc)}); create it or fix DATA_DIR"
        )
    if code in _BAD_CREDENTIALS:
        return PipelineError(
            f"object store at {endpoint} (AWS_ENDPOINT_URL) refused the credentials: {first_line(exc)}; "
            "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and the bucket's permissions)"
        )
    if _unreachable(exc) or (code is not None and (code.startswith("5") or code in {"SlowDown", "InternalError"})):
        return TransientPipelineError(
            f"object store at {endpoint} (AWS_ENDPOINT_URL) did not answer: {first_line(exc)}; "
            "retry when it is reachable"
        )
    return None
