"""pipeline.core.store on both backends: local disk and a real S3 server (SeaweedFS, tests/s3server.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline.core import store
from pipeline.core.errors import PipelineError, TransientPipelineError, as_pipeline_error
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server, free_ports


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh data root on each backend."""
    if request.param == "local":
        return store.data_root(str(tmp_path / "data"))
    server: S3Server = request.getfixturevalue("s3_server")
    return store.data_root(server.data_dir(), server.env())


def test_a_local_data_dir_is_a_real_path_relative_to_the_project_root(tmp_path: Path) -> None:
    root = store.data_root("data", {"MELTANO_PROJECT_ROOT": str(tmp_path)})
    assert isinstance(root, Path)
    assert root == tmp_path / "data"
    assert not store.is_object_store(root)


def test_an_s3_data_dir_is_an_object_store_path(s3_server: S3Server) -> None:
    root = store.data_root("s3://pipeline/some/prefix", s3_server.env())
    assert store.is_object_store(root)
    assert store.bucket_key(root / "a.csv") == ("pipeline", "some/prefix/a.csv")


@pytest.mark.parametrize("value", ["gs://bucket/x", "s3a://bucket/x", "http://host/x"])
def test_an_unknown_scheme_is_refused_in_one_line_naming_data_dir(value: str) -> None:
    with pytest.raises(PipelineError, match=rf"^DATA_DIR {value}: unknown scheme") as refused:
        store.data_root(value, {})
    assert "\n" not in str(refused.value)


def test_an_s3_url_without_a_bucket_is_refused() -> None:
    with pytest.raises(PipelineError, match="names no bucket"):
        store.data_root("s3:///x", {})


def test_files_are_written_listed_hashed_and_removed_alike_on_both_backends(root) -> None:
    data = b"id,name\n1,a\n" * 100_000
    (root / "day" / "run").mkdir(parents=True, exist_ok=True)
    (root / "day" / "run" / "t.csv").write_bytes(data)
    (root / "day" / "run" / "_schema.json").write_text("{}", encoding="utf-8")
    assert store.sha256_of(root / "day" / "run" / "t.csv") == hashlib.sha256(data).hexdigest()
    assert sorted(p.name for p in (root / "day" / "run").iterdir()) == ["_schema.json", "t.csv"]
    assert [p.name for p in root.glob("day/*/t.csv")] == ["t.csv"]
    store.remove_tree(root / "day")
    assert not (root / "day" / "run" / "t.csv").exists()
    store.remove_tree(root / "day")  # gone already: nothing to do


def test_a_conditional_put_replaces_only_the_version_it_read(root) -> None:
    receipt = root / "_runs" / "job" / "2024-01-02.json"
    assert store.read_versioned(receipt) is None
    store.put_if_absent(receipt, b"first")
    with pytest.raises(store.ConflictError):
        store.put_if_absent(receipt, b"second")
    data, version = store.read_versioned(receipt)
    assert data == b"first"
    store.put_if_match(receipt, b"third", version)
    with pytest.raises(store.ConflictError):
        store.put_if_match(receipt, b"fourth", version)  # what it read is no longer there
    assert receipt.read_bytes() == b"third"


def test_a_missing_bucket_is_refused_as_permanent(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    with pytest.raises(PipelineError, match=r"bucket of DATA_DIR does not exist.*create it or fix DATA_DIR") as refused:
        store.verify(store.data_root("s3://no-such-bucket/x", s3_server.env()))
    assert not isinstance(refused.value, TransientPipelineError)


def test_wrong_credentials_are_refused_as_permanent_without_the_secret(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    env = s3_server.env(AWS_SECRET_ACCESS_KEY="not-the-secret")
    with pytest.raises(PipelineError, match=r"refused the credentials.*check AWS_ACCESS_KEY_ID") as refused:
        store.verify(store.data_root(s3_server.data_dir(), env))
    assert not isinstance(refused.value, TransientPipelineError)
    assert "not-the-secret" not in str(refused.value)
    assert SECRET_KEY not in str(refused.value)
    assert ACCESS_KEY not in str(refused.value) or "AWS_ACCESS_KEY_ID" in str(refused.value)


def test_an_unreachable_endpoint_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    (port,) = free_ports(1)  # nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    root = store.data_root("s3://pipeline/x", env)
    with pytest.raises(TransientPipelineError, match=rf"object store at {endpoint} .*did not answer"):
        store.verify(root)
    with pytest.raises(Exception) as raw:  # noqa: PT011 (botocore's own class, not an OSError)
        (root / "a").read_bytes()
    assert isinstance(as_pipeline_error(raw.value), TransientPipelineError)
