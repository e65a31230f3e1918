"""Step 1 writes each byte once, on a real S3 server (SeaweedFS) and on local disk: tap-postgres-native and target-lfs.

The tap writes each table's day file where it will stay (pipeline.days.handover): in an
object store at its final key in the run's folder, adopted by key; the bytes are the
same as on local disk, a rerun writes the same bytes again, a wrong header is refused,
and a tap killed inside a day file leaves nothing where a reader looks.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pipeline.core import connections
from pipeline.core.crashpoints import MARKER_ENV, PAUSE_AT_ENV
from pipeline.days.handover import Handover
from tests.conftest import project_env
from tests.plugins.conftest import write_tap_config
from tests.s3server import S3Server

DAY = "2024-06-01"
ENV = project_env()
SOURCE_DDL = r"""
CREATE TABLE items (id integer PRIMARY KEY, name text, price numeric(10,2), flag boolean, bin bytea);
INSERT INTO items VALUES (1, 'plain', 12.50, true, '\xdeadbeef'), (2, '', NULL, false, NULL),
 (3, E'line1\nline2', -0.01, NULL, '\x'), (4, 'a,"b"', 1, true, '\x00');
CREATE TABLE "Odd Name" (id integer);
"""
TABLES = {"items": "items", "Odd Name": "%4fdd%20%4eame"}


@pytest.fixture(scope="module")
def source_db(throwaway_database) -> str:
    name = throwaway_database("day_files")
    with psycopg.connect(
        connections.conninfo(connections.SOURCE, ENV, database=name, admin=True), autocommit=True
    ) as conn:
        conn.execute(SOURCE_DDL)
    return name


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """(DATA_DIR, the environment that reaches it): a local folder, or a fresh prefix of the session's S3 server."""
    if request.param == "local":
        return str(tmp_path / "data"), {}
    server: S3Server = request.getfixturevalue("s3_server")
    return server.data_dir(), server.env()


def settings(data_dir: str) -> dict[str, str]:
    return {
        "data_dir": data_dir,
        "pipeline_date": DAY,
        "job": "postgres-to-lfs",
        "folder_template": "postgres/{table}/{date}",
    }


def run_tap(source_db: str, data_dir: str, env: dict[str, str], folder: Path) -> subprocess.Popen[str]:
    config = write_tap_config(folder / "tap.json", source_db, **settings(data_dir))
    exe = Path(__file__).resolve().parents[2] / ".meltano/extractors/tap-postgres/venv/bin/tap-postgres-native"
    return subprocess.Popen(
        [exe, "--config", config],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_target(target_lfs_exe: Path, data_dir: str, env: dict[str, str], folder: Path, singer: str) -> Any:
    config = folder / "target.json"
    config.write_text(json.dumps({**settings(data_dir), "source": "postgres"}))
    return subprocess.run(
        [target_lfs_exe, "--config", config],
        input=singer,
        capture_output=True,
        text=True,
        cwd=folder,
        env={**project_env(), **env},
        timeout=120,
    )


def day(source_db: str, target_lfs_exe: Path, data_dir: str, env: dict[str, str], folder: Path) -> None:
    tap = run_tap(source_db, data_dir, env, folder)
    singer, errors = tap.communicate(timeout=120)
    assert tap.returncode == 0, errors
    load = run_target(target_lfs_exe, data_dir, env, folder, singer)
    assert load.returncode == 0, load.stderr


def day_files(data_dir: str, env: dict[str, str]) -> dict[str, bytes]:
    """Every file of the day's folders, by its path under DATA_DIR with the run's folder as <run>."""
    if data_dir.startswith("s3://"):
        objects = S3Server(endpoint=env["AWS_ENDPOINT_URL"]).objects(data_dir)
        files = {}
        for key, data in objects.items():
            parts = key.split("/")
            if parts[0] == "postgres":
                files["/".join([*parts[:3], "<run>", *parts[4:]])] = data
        return files
    staging = Path(data_dir) / ".staging" / "postgres-to-lfs" / DAY
    return {
        "/".join([*p.relative_to(staging).parts[:3], "<run>", p.name]): p.read_bytes()
        for p in staging.rglob("*")
        if p.is_file() and p.parts[len(staging.parts)] == "postgres"
    }


def test_each_day_file_is_written_once_where_it_stays_with_the_same_bytes_on_both_backends(
    source_db, target_lfs_exe, s3_server, tmp_path
):
    local, s3 = str(tmp_path / "data"), s3_server.data_dir()
    day(source_db, target_lfs_exe, local, {}, tmp_path)
    day(source_db, target_lfs_exe, s3, s3_server.env(), tmp_path)

    on_disk, in_bucket = day_files(local, {}), day_files(s3, s3_server.env())
    assert in_bucket == on_disk
    for key in TABLES.values():
        folder = f"postgres/{key}/{DAY}/<run>"
        assert {name.rsplit("/", 1)[1] for name in in_bucket if name.startswith(folder + "/")} == {
            f"{key}.csv",
            "_schema.json",
            "_manifest.json",
            "_SUCCESS",
        }
        data = in_bucket[f"{folder}/{key}.csv"]
        manifest = json.loads(in_bucket[f"{folder}/_manifest.json"])["tables"][key]
        assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest["bytes"] == len(data)
    assert in_bucket[f"postgres/items/{DAY}/<run>/items.csv"].splitlines()[0] == b"id,name,price,flag,bin"
    # Nothing else in the bucket but the run's staging record, which lists its folders for the publish.
    objects = s3_server.objects(s3)
    [record] = [key for key in objects if not key.startswith("postgres/")]
    assert record.startswith(f".staging/postgres-to-lfs/{DAY}/")
    folders = json.loads(objects[record])["folders"]
    assert sorted(f.split("/")[1] for f in folders) == sorted(TABLES.values())


def test_a_rerun_writes_the_same_bytes(source_db, target_lfs_exe, backend, tmp_path):
    data_dir, env = backend
    day(source_db, target_lfs_exe, data_dir, env, tmp_path)
    first = day_files(data_dir, env)
    if data_dir.startswith("s3://"):
        S3Server(endpoint=env["AWS_ENDPOINT_URL"]).filesystem().rm(data_dir.removeprefix("s3://"), recursive=True)
    day(source_db, target_lfs_exe, data_dir, env, tmp_path)
    assert day_files(data_dir, env) == first
    assert len(first) == 4 * len(TABLES)


def test_a_day_file_whose_header_is_not_the_streams_columns_is_refused_in_one_line(target_lfs_exe, s3_server, tmp_path):
    data_dir = s3_server.data_dir()
    url = f"{data_dir}/postgres/items/{DAY}/run1/items.csv"
    text = b"id,nom\n1,x\n"
    s3_server.filesystem().pipe_file(url.removeprefix("s3://"), text)
    schema = {
        "x-source-schema": "public",
        "x-source-table": "items",
        "properties": {"id": {"type": ["integer"]}, "name": {"type": ["string", "null"]}},
    }
    entry = Handover(uri=url, rows=1, sha256=hashlib.sha256(text).hexdigest()).manifest_entry()
    lines = [
        json.dumps({"type": "SCHEMA", "stream": "public-items", "schema": schema, "key_properties": ["id"]}),
        json.dumps({"type": "BATCH", "stream": "public-items", "encoding": {"format": "csv"}, "manifest": [entry]}),
    ]
    load = run_target(target_lfs_exe, data_dir, s3_server.env(), tmp_path, "".join(f"{line}\n" for line in lines))
    assert load.returncode == 1
    assert "Traceback" not in load.stderr
    assert load.stderr.splitlines()[-1] == (
        f"target-lfs: table 'items' (stream public-items): {url} has the header ['id', 'nom'], "
        "not the stream's columns ['id', 'name']"
    )
    assert [key for key in s3_server.objects(data_dir) if key.startswith("postgres/")] == [
        f"postgres/items/{DAY}/run1/items.csv"  # no metadata: never a complete folder
    ]


def test_record_messages_are_refused_in_one_line_on_s3(target_lfs_exe, s3_server, tmp_path):
    data_dir = s3_server.data_dir()
    schema = {"x-source-schema": "public", "x-source-table": "items", "properties": {"id": {"type": ["integer"]}}}
    lines = [
        json.dumps({"type": "SCHEMA", "stream": "public-items", "schema": schema, "key_properties": ["id"]}),
        json.dumps({"type": "RECORD", "stream": "public-items", "record": {"id": 1}}),
    ]
    load = run_target(target_lfs_exe, data_dir, s3_server.env(), tmp_path, "".join(f"{line}\n" for line in lines))
    assert load.returncode == 1
    assert "RECORD messages need a local DATA_DIR" in load.stderr.splitlines()[-1]
    assert not [key for key in s3_server.objects(data_dir) if key.startswith("postgres/")]


def test_a_tap_killed_inside_a_day_file_leaves_nothing_where_a_reader_looks(source_db, backend, tmp_path):
    data_dir, env = backend
    marker = tmp_path / "paused"
    tap = run_tap(source_db, data_dir, {**env, PAUSE_AT_ENV: "day-file", MARKER_ENV: str(marker)}, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert tap.poll() is None, tap.communicate()[1]
            assert time.monotonic() < deadline, "the tap never reached its pause point"
            time.sleep(0.1)
    finally:
        os.killpg(tap.pid, signal.SIGKILL)
        tap.communicate()
    if data_dir.startswith("s3://"):
        assert S3Server(endpoint=env["AWS_ENDPOINT_URL"]).objects(data_dir) == {}  # the upload never completed
        return
    written = [p.relative_to(data_dir).parts for p in Path(data_dir).rglob("*") if p.is_file()]
    assert written  # the partial file ...
    assert all(parts[:4] == (".staging", "postgres-to-lfs", DAY, ".incoming") for parts in written)  # ... only there
