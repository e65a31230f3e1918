"""A step-1 rerun never silently destroys the day it replaces, and ``restore`` brings it back, byte for byte;
``make run`` prunes old days after the day when asked.

Real Meltano runs of the jobs (csv-to-lfs with the CSV source in two versions).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from pathlib import Path

import pytest

from pipeline.core.files import read_json
from pipeline.days.history import RECEIPT_FILE, history_root, kept_versions
from pipeline.days.layout import receipt_path
from pipeline.days.receipts import read_day
from tests.analytics.days import as_date
from tests.conftest import PROJECT_ROOT, Pipeline

pytestmark = pytest.mark.integration

JOB, DAY = "csv-to-lfs", "2024-03-05"


def published_files(data_dir: Path, job: str, day: str) -> dict[str, str]:
    """The published day, every file as its sha256: the receipt and each folder the receipt lists."""
    return day_files(data_dir, receipt_path(data_dir, job, as_date(day)))


def day_files(data_dir: Path, receipt: Path) -> dict[str, str]:
    """A version of a day under ``data_dir`` (the data dir, or a kept version's folder) and its ``receipt``."""
    files = {"receipt": hashlib.sha256(receipt.read_bytes()).hexdigest()}
    for relative in read_json(receipt)["folders"]:
        for path in sorted((data_dir / relative).iterdir()):
            files[f"{relative}/{path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def restore(pipeline: Pipeline, job: str, day: str, *version: str) -> str:
    result = pipeline.invoke("restore", "--job", job, "--date", day, *(("--version", *version) if version else ()))
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_a_rerun_keeps_the_replaced_version_and_restore_brings_it_back(pipeline: Pipeline, tmp_path: Path) -> None:
    full = Path(pipeline.env["ORDER_DETAILS_CSV"])
    shorter = tmp_path / "order_details.csv"
    shorter.write_text("".join(full.read_text().splitlines(keepends=True)[:-100]))
    refused = pipeline.invoke("restore", "--job", JOB, "--date", DAY)
    assert refused.returncode == 1
    assert f"pipeline restore failed: {JOB} has no kept version of {DAY}" in refused.stderr
    pipeline.run_ok(JOB, day=DAY)
    first = published_files(pipeline.data_dir, JOB, DAY)

    assert pipeline.run(JOB, day=DAY, ORDER_DETAILS_CSV=str(shorter)).returncode == 0
    second = published_files(pipeline.data_dir, JOB, DAY)
    (version,) = kept_versions(pipeline.data_dir, JOB, as_date(DAY))
    assert second != first
    kept = history_root(pipeline.data_dir, JOB, as_date(DAY)) / version
    assert day_files(kept, kept / RECEIPT_FILE) == first

    # A byte-identical rerun keeps no second copy.
    assert pipeline.run(JOB, day=DAY, ORDER_DETAILS_CSV=str(shorter)).returncode == 0
    assert kept_versions(pipeline.data_dir, JOB, as_date(DAY)) == [version]
    assert published_files(pipeline.data_dir, JOB, DAY) == second

    output = restore(pipeline, JOB, DAY)

    assert f"{JOB} {DAY}: restored version {version}; the version it replaced is kept as " in output
    assert f"step 2 must be rerun for {DAY}: PIPELINE_DATE={DAY} .venv/bin/meltano run lfs-to-analytics" in output
    assert published_files(pipeline.data_dir, JOB, DAY) == first
    rows = {t.table: t.rows for t in read_day(pipeline.data_dir, as_date(DAY), [JOB])}
    assert rows == {"order_details": len(full.read_text().splitlines()) - 1}
    # The replaced one is kept in turn, and restoring it by name swaps back.
    (replaced,) = kept_versions(pipeline.data_dir, JOB, as_date(DAY))
    restore(pipeline, JOB, DAY, replaced)
    assert published_files(pipeline.data_dir, JOB, DAY) == second
    assert kept_versions(pipeline.data_dir, JOB, as_date(DAY)) == [version]


def test_step2_prunes_after_the_day_with_prune_after_run_but_not_a_day_never_loaded(pipeline: Pipeline) -> None:
    pipeline.run_ok(JOB, day=DAY)
    today = dt.datetime.now(dt.UTC).date().isoformat()

    result = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "run_day.sh"), today],
        cwd=PROJECT_ROOT,
        env={**pipeline.env, "PRUNE_AFTER_RUN": "1", "RETENTION_DAYS": "30"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-4000:]
    # Step 2's own output, through Meltano: the old day's step-1 files never reached the analytics database.
    assert f"prune {DAY}: kept, not in the analytics database: the files of {JOB} are not loaded" in (
        result.stdout + result.stderr
    )
    assert receipt_path(pipeline.data_dir, JOB, as_date(DAY)).is_file()
    forced = pipeline.invoke("prune", "--force", RETENTION_DAYS="30")
    assert forced.returncode == 0, forced.stderr[-4000:]
    assert f"prune {DAY}: removed" in forced.stdout
    assert not (pipeline.data_dir / "csv" / DAY).exists()
    assert not receipt_path(pipeline.data_dir, JOB, as_date(DAY)).exists()
    assert {t.table for t in read_day(pipeline.data_dir, as_date(today), [JOB])} == {"order_details"}
    assert (pipeline.data_dir / "results" / today / "orders_with_details.json").is_file()
