"""Parsing of the day a run processes (``PIPELINE_DATE``), and which days retention keeps.

Meltano expands an unset environment variable to an empty string, so every plugin
that writes dated paths must refuse an empty or malformed value itself, before it
writes anything: otherwise files land in undated paths such as ``orders/orders.csv``.

Retention's window lives here, not in ``pipeline.retention``, because every job's first
task (the claim) refuses a day outside it: that task imports no database code beyond
its lock, and a day older than ``RETENTION_DAYS`` would only be written to be pruned.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from pipeline.core.errors import PipelineError

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
RETENTION_ENV = "RETENTION_DAYS"
# 1: run a day older than RETENTION_DAYS all the same (README "Operations").
FORCE_OLD_DAY_ENV = "PIPELINE_FORCE_OLD_DAY"
# 1: step 2's publish-analytics prunes (RETENTION_DAYS) after the day it published.
PRUNE_AFTER_RUN_ENV = "PRUNE_AFTER_RUN"
# Retention off, for runs of fixed past days in throwaway places (the tests, the bench), whatever
# .env says: an empty value set in the environment wins over .env, for Meltano as for the pipeline.
RETENTION_OFF = {RETENTION_ENV: "", PRUNE_AFTER_RUN_ENV: ""}


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


def retention_days(value: str | None) -> int | None:
    """The number of days to keep (None: keep everything), or a one-line refusal naming the setting."""
    if value is None or not value.strip():
        return None
    if not value.strip().isdigit() or int(value) < 1:
        raise PipelineError(f"{RETENTION_ENV}={value!r} is not a whole number of days of at least 1 (unset: keep all)")
    return int(value)


def oldest_kept_day(today: dt.date, keep_days: int) -> dt.date:
    """The oldest day retention keeps: the days before it are pruned."""
    return today - dt.timedelta(days=keep_days)


def refuse_expired_day(day: dt.date, environ: Mapping[str, str], today: dt.date) -> None:
    """Refuse, in one line, a run for a day that retention prunes, unless ``PIPELINE_FORCE_OLD_DAY=1``."""
    keep_days = retention_days(environ.get(RETENTION_ENV))
    if keep_days is None or environ.get(FORCE_OLD_DAY_ENV) == "1":
        return
    oldest = oldest_kept_day(today, keep_days)
    if day < oldest:
        raise PipelineError(
            f"refused: {day} is older than {RETENTION_ENV}={keep_days} keeps (from {oldest}), so the next prune "
            f"would remove it; to run it all the same, set {FORCE_OLD_DAY_ENV}=1 for this run "
            f"(make run DATE={day} FORCE=1)"
        )
