"""Naming shared by the analytics loader (target-analytics) and the publish step.

Each day is loaded into a schema of its own, so two days loading at once never see
each other's rows, and the publish step knows exactly what this run loaded.
"""

import datetime as dt

FINAL_SCHEMA = "public"
DAY_COLUMN = "pipeline_date"


def staging_schema(day: dt.date) -> str:
    """The staging schema of ``day``, e.g. ``staging_20240102``."""
    return f"staging_{day:%Y%m%d}"
