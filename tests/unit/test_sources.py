"""Obtaining the source files: only the pinned bytes are accepted."""

from pathlib import Path

import pytest

from pipeline.core.errors import PipelineError
from pipeline.setup.source_files import PINNED_SHA256, obtain_sources


def test_copies_from_a_local_folder_and_is_idempotent(tmp_path: Path, source_files: dict[str, Path]) -> None:
    destination = tmp_path / "sources"
    first = obtain_sources(destination, source_files["northwind.sql"].parent)
    assert sorted(p.name for p in first) == sorted(PINNED_SHA256)
    mtimes = [p.stat().st_mtime_ns for p in first]
    second = obtain_sources(destination, source_files["northwind.sql"].parent)
    assert [p.stat().st_mtime_ns for p in second] == mtimes


def test_refuses_a_file_with_another_checksum(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    for name in PINNED_SHA256:
        (local / name).write_text("not the challenge's file\n")
    with pytest.raises(PipelineError, match=r"local/northwind\.sql has sha256 .* expected"):
        obtain_sources(tmp_path / "sources", local)
    assert not (tmp_path / "sources" / "northwind.sql").exists()


def test_names_a_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"northwind.sql not found \(NORTHWIND_DATA_DIR="):
        obtain_sources(tmp_path / "sources", tmp_path)
