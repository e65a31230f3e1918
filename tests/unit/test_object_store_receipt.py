"""The S3 receipt's conditional put (pipeline.days.object_store.commit_receipt) on a real S3 server: one commits."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.core.errors import TransientPipelineError
from pipeline.core.store import data_root, read_versioned
from pipeline.days.layout import receipt_path
from pipeline.days.object_store import commit_receipt
from tests.s3server import S3Server

DAY = dt.date(2024, 1, 2)


def test_a_replace_over_a_receipt_that_changed_since_it_was_read_fails_as_transient_and_changes_nothing(
    s3_server: S3Server,
) -> None:
    receipt = receipt_path(data_root(s3_server.data_dir(), s3_server.env()), "csv-to-lfs", DAY)
    commit_receipt(receipt, b"first", None, "csv-to-lfs", DAY)
    read = read_versioned(receipt)
    commit_receipt(receipt, b"other run", read, "csv-to-lfs", DAY)  # another publisher, from the same read

    with pytest.raises(TransientPipelineError, match=r"changed while csv-to-lfs published 2024-01-02.*rerun: "):
        commit_receipt(receipt, b"this run", read, "csv-to-lfs", DAY)

    assert receipt.read_bytes() == b"other run"


def test_a_first_publish_where_another_run_published_meanwhile_fails_as_transient(s3_server: S3Server) -> None:
    receipt = receipt_path(data_root(s3_server.data_dir(), s3_server.env()), "csv-to-lfs", DAY)
    commit_receipt(receipt, b"other run", None, "csv-to-lfs", DAY)

    with pytest.raises(TransientPipelineError, match="another run published it meanwhile"):
        commit_receipt(receipt, b"this run", None, "csv-to-lfs", DAY)

    assert receipt.read_bytes() == b"other run"
