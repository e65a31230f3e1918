"""Retention at the end of step 2 never turns a published day into a failed run."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline import cli


def test_a_failed_prune_after_the_day_says_why_in_one_line_and_does_not_raise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RETENTION_DAYS", "ninety")

    cli._prune_after(dt.date(2024, 1, 2))

    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("prune after 2024-01-02 failed: RETENTION_DAYS='ninety' is not a whole number")
    assert err[0].endswith("rerun: make prune")
