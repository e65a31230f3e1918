"""PIPELINE_DATE parsing: an empty or malformed day is refused in one line; so is a day retention prunes."""

import datetime as dt

import pytest

from pipeline.core.dates import parse_pipeline_date, refuse_expired_day
from pipeline.core.errors import PipelineError


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


TODAY = dt.date(2024, 3, 10)


def test_a_day_retention_keeps_may_run() -> None:
    # RETENTION_DAYS=5 keeps 2024-03-05 and later (prune removes what is before).
    for environ in ({}, {"RETENTION_DAYS": ""}, {"RETENTION_DAYS": "5"}):
        refuse_expired_day(dt.date(2024, 3, 5), environ, TODAY)


def test_a_day_older_than_retention_is_refused_in_one_line_unless_forced() -> None:
    with pytest.raises(PipelineError) as refused:
        refuse_expired_day(dt.date(2024, 3, 4), {"RETENTION_DAYS": "5"}, TODAY)
    assert str(refused.value) == (
        "refused: 2024-03-04 is older than RETENTION_DAYS=5 keeps (from 2024-03-05), so the next prune would remove "
        "it; to run it all the same, set PIPELINE_FORCE_OLD_DAY=1 for this run (make run DATE=2024-03-04 FORCE=1)"
    )
    refuse_expired_day(dt.date(2024, 3, 4), {"RETENTION_DAYS": "5", "PIPELINE_FORCE_OLD_DAY": "1"}, TODAY)
    with pytest.raises(PipelineError, match=r"^RETENTION_DAYS='five' is not a whole number"):
        refuse_expired_day(dt.date(2024, 3, 4), {"RETENTION_DAYS": "five"}, TODAY)
