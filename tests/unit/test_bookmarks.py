"""Each incremental table's window, planned from the job's receipts and written into the day's receipt."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pipeline.core.errors import PipelineError
from pipeline.days.bookmarks import (
    BOOKMARKS_FILE,
    CHANGES,
    STATE,
    ReceiptHistory,
    Window,
    holds,
    plan_window,
    refuse_moved_windows,
)
from pipeline.days.layout import receipt_path, staging_root
from pipeline.days.publish import publish_staged_day
from pipeline.days.receipts import read_day
from tests.conftest import unfenced
from tests.unit.test_day_folders import stage_table

JOB = "postgres-to-lfs"
D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)


def write_receipt(data_dir: Path, day: dt.date, replication: dict | None) -> None:
    """A receipt of ``day`` whose table ``orders`` has the window ``replication`` (None: FULL_TABLE)."""
    entry = {"folder": f"postgres/orders/{day}", "file": "orders.csv", "rows": 1, "sha256": "x"}
    if replication is not None:
        entry["replication"] = replication
    path = receipt_path(data_dir, JOB, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"job": JOB, "date": str(day), "folders": {}, "tables": {"orders": entry}}))


def plan(data_dir: Path, day: dt.date, method: str = "INCREMENTAL", key: str | None = "id", reextract: bool = False):
    return plan_window(ReceiptHistory(data_dir, JOB, day), "orders", "'public'.'orders'", method, key, reextract)


def incremental(start: str | None, end: str) -> dict:
    return {"method": "INCREMENTAL", "key": "id", "start": start, "end": end}


def test_the_first_day_is_a_full_load_and_the_next_starts_at_its_end(tmp_path: Path) -> None:
    assert plan(tmp_path, D1) == Window("INCREMENTAL", "id", None)
    assert plan(tmp_path, D1).holds == STATE
    write_receipt(tmp_path, D1, incremental(None, "17"))

    assert plan(tmp_path, D2) == Window("INCREMENTAL", "id", "17")
    assert plan(tmp_path, D2).holds == CHANGES


def test_a_gap_starts_at_the_latest_earlier_receipt_and_a_rerun_of_the_latest_day_reads_on(tmp_path: Path) -> None:
    write_receipt(tmp_path, D1, incremental(None, "17"))
    write_receipt(tmp_path, D3, incremental("17", "30"))

    assert plan(tmp_path, dt.date(2024, 1, 5)).start == "30"
    assert plan(tmp_path, D3) == Window("INCREMENTAL", "id", "17")


@pytest.mark.parametrize(
    "previous",
    [None, {"method": "INCREMENTAL", "key": "updated_at", "start": None, "end": "x"}, {"method": "LOG_BASED"}],
)
def test_a_table_whose_method_or_key_changed_starts_with_a_full_load(tmp_path: Path, previous: dict | None) -> None:
    write_receipt(tmp_path, D1, previous)

    assert plan(tmp_path, D2).start is None


def test_a_first_run_of_a_day_before_a_published_one_is_refused_in_one_line(tmp_path: Path) -> None:
    write_receipt(tmp_path, D1, incremental(None, "17"))
    write_receipt(tmp_path, D3, incremental("17", "30"))

    with pytest.raises(PipelineError) as refused:
        plan(tmp_path, D2)

    assert str(refused.value).startswith(
        "refused: table 'public'.'orders' is read INCREMENTAL and postgres-to-lfs already has a receipt for "
        "the later day 2024-01-03"
    )
    assert "\n" not in str(refused.value)


def test_a_rerun_of_a_past_day_republishes_its_kept_file_unless_a_reextract_is_asked(tmp_path: Path) -> None:
    write_receipt(tmp_path, D1, incremental(None, "17"))
    write_receipt(tmp_path, D2, incremental("17", "30"))

    kept = Window("INCREMENTAL", "id", None, "17", f"postgres/orders/{D1}/orders.csv", kept_rows=1)
    assert plan(tmp_path, D1) == kept
    assert plan(tmp_path, D1, reextract=True) == Window("INCREMENTAL", "id", None, "17")


def test_the_publish_writes_each_staged_window_into_its_tables_receipt_entry(tmp_path: Path) -> None:
    stage_table(tmp_path, JOB, "postgres/orders/2024-01-02", "orders", "id\n1\n")
    stage_table(tmp_path, JOB, "postgres/products/2024-01-02", "products", "id\n1\n")
    window = Window("INCREMENTAL", "id", "17", "30").receipt_entry()
    (staging_root(tmp_path, JOB, D2) / BOOKMARKS_FILE).write_text(json.dumps({"orders": window}))

    receipt = publish_staged_day(tmp_path, JOB, D2, unfenced)

    assert receipt["tables"]["orders"]["replication"] == window
    assert "replication" not in receipt["tables"]["products"]
    read = {table.key: table for table in read_day(tmp_path, D2, [JOB])}
    assert (holds(read["orders"].replication), holds(read["products"].replication)) == (CHANGES, STATE)


def test_a_restore_that_moves_a_window_before_a_later_day_is_refused(tmp_path: Path) -> None:
    write_receipt(tmp_path, D1, incremental(None, "17"))
    write_receipt(tmp_path, D2, incremental("17", "30"))
    write_receipt(tmp_path, D3, incremental("30", "40"))
    kept = json.loads(receipt_path(tmp_path, JOB, D2).read_text())
    kept["tables"]["orders"]["replication"] = incremental("17", "25")

    refuse_moved_windows(tmp_path, JOB, D2, json.loads(receipt_path(tmp_path, JOB, D2).read_text()))
    refuse_moved_windows(tmp_path, JOB, D3, kept)  # the latest day: the next run starts at whatever it holds
    with pytest.raises(PipelineError) as refused:
        refuse_moved_windows(tmp_path, JOB, D2, kept)

    assert str(refused.value).startswith(
        "refused: the kept version of postgres-to-lfs 2024-01-02 has other windows for orders than the published one"
    )
