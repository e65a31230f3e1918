"""``make run``'s closing FAILED line: the cause the job recorded, as Airflow's CAUSE: line says it."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.failure_cause import cause_line


def write_records(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_a_transient_cause_says_the_rerun_may_pass_as_it_is(tmp_path: Path) -> None:
    failures = write_records(
        tmp_path / "f.jsonl",
        {"component": "pipeline claim failed", "transient": True, "message": "refused: csv-to-lfs is already running"},
    )

    assert cause_line("csv-to-lfs", 1, failures) == (
        "pipeline claim failed: refused: csv-to-lfs is already running (transient: the rerun below may pass as it is)"
    )


def test_the_first_permanent_cause_wins_over_transient_ones(tmp_path: Path) -> None:
    failures = write_records(
        tmp_path / "f.jsonl",
        {"component": "tap-lfs", "transient": True, "message": "lost"},
        {"component": "target-lfs", "transient": False, "message": "bad row"},
    )

    assert cause_line("csv-to-lfs", 1, failures) == "target-lfs: bad row (permanent: fix it, then rerun)"


def test_a_job_that_recorded_nothing_points_to_its_output(tmp_path: Path) -> None:
    assert cause_line("csv-to-lfs", 137, tmp_path / "none.jsonl") == (
        "csv-to-lfs exited with code 137 without recording a cause (killed? a crash?): see its output above"
    )
