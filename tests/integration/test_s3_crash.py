"""test_crash.py's step-1 kill points with ``DATA_DIR`` on a real S3 server (SeaweedFS).

The same kills (``STEP1_CRASHES``: the whole session or Meltano alone, while the target
writes, before the publish, between keeping the replaced receipt and putting the new
one) and the same checks: the day keeps its previous receipt, whose objects are
complete and match it, and the plain rerun at once publishes the new day. On S3 a
publish never removes the receipt, so "no receipt" is not even a possible outcome.
Step 2 on S3 is tested with its own reading code (not here).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.core.store import data_root
from tests.conftest import Pipeline, make_pipeline
from tests.integration.test_crash import (
    DAY,
    MELTANO_ONLY,
    STEP1_CRASHES,
    PausedRun,
    Sources,
    check_step1_day,
    receipt,
    rerun,
    start_paused,
)
from tests.s3server import S3Server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3_shared_pipeline(s3_server: S3Server, source_files: dict[str, Path]) -> Iterator[Pipeline]:
    """One pipeline for the module, its DATA_DIR a prefix of its own in the test server's bucket."""
    root = data_root(s3_server.data_dir(), s3_server.env())
    yield from make_pipeline(
        root, source_files["northwind.sql"], source_files["order_details.csv"], extra_env=s3_server.env()
    )


@pytest.fixture(scope="module")
def s3_sources(s3_shared_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Sources:
    """The first complete step-1 day, with the full CSV source."""
    full = Path(s3_shared_pipeline.env["ORDER_DETAILS_CSV"])
    shorter = tmp_path_factory.mktemp("sources") / "order_details.csv"
    shorter.write_text("".join(full.read_text().splitlines(keepends=True)[:-100]))
    for job in ("postgres-to-lfs", "csv-to-lfs"):
        s3_shared_pipeline.run_ok(job, day=DAY)
    return Sources(full=full, shorter=shorter, published=full, loaded=full)


@pytest.fixture
def paused() -> Iterator[list[PausedRun]]:
    """The paused runs a test starts; whatever is left of them is killed afterwards."""
    runs: list[PausedRun] = []
    yield runs
    for run in runs:
        run.reap()


@pytest.mark.parametrize(("job", "point", "how"), STEP1_CRASHES)
def test_a_killed_step1_job_on_s3_leaves_the_previous_day_and_reruns_at_once(
    s3_shared_pipeline: Pipeline,
    s3_sources: Sources,
    paused: list[PausedRun],
    tmp_path: Path,
    job: str,
    point: str,
    how: str,
) -> None:
    pipeline, sources = s3_shared_pipeline, s3_sources
    before = receipt(pipeline, job)
    assert before is not None
    version = sources.other_than(sources.published)
    overrides = {"ORDER_DETAILS_CSV": str(version)} if job == "csv-to-lfs" else {}
    run = start_paused(pipeline, job, point, tmp_path, **overrides)
    paused.append(run)

    run.kill(how)

    assert receipt(pipeline, job) == before
    if overrides:
        sources.published = version
    wait = {"PIPELINE_LOCK_WAIT_SECONDS": "300"} if how == MELTANO_ONLY else {}
    rerun(pipeline, job, **overrides, **wait)
    check_step1_day(pipeline, job, sources)
