"""Parsing of the day a run processes (``PIPELINE_DATE``).

Meltano expands an unset environment variable to an empty string, so every plugin
that writes dated paths must refuse an empty or malformed value itself, before it
writes anything: otherwise files land in undated paths such as ``orders/orders.csv``.
"""

from __future__ import annotations

import datetime as dt
import re

from pipeline.errors import PipelineError

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_pipeline_date(value: str | None, setting: str = "PIPELINE_DATE") -> dt.date:
    """Return the day named by ``value`` (``YYYY-MM-DD``) or raise a one-line error."""
    if not value:
        raise PipelineError(f"{setting} is not set: give the day to process as YYYY-MM-DD, e.g. {setting}=2024-01-02")
    if not _ISO_DAY.fullmatch(value):
        raise PipelineError(f"{setting}={value!r} is not a date of the form YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise PipelineError(f"{setting}={value!r} is not a valid date: {exc}") from exc
