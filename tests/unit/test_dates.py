"""PIPELINE_DATE parsing: an empty or malformed day is refused in one line."""

import datetime as dt

import pytest

from pipeline.dates import parse_pipeline_date
from pipeline.errors import PipelineError


def test_valid_day() -> None:
    assert parse_pipeline_date("2024-02-29") == dt.date(2024, 2, 29)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "PIPELINE_DATE is not set"),
        ("", "PIPELINE_DATE is not set"),
        ("2024-1-2", "not a date of the form YYYY-MM-DD"),
        ("2024-01-02T00:00", "not a date of the form YYYY-MM-DD"),
        ("2023-02-29", "not a valid date"),
    ],
)
def test_refused(value: str | None, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        parse_pipeline_date(value)
