"""test_crash.py's step-2 kill points with ``DATA_DIR`` on a real S3 server (SeaweedFS).

Killed while the loader streams a day's objects into the analytics database, or
after the export wrote its objects but before its result receipt: readers see the
old day or the new one (the analytics tables, and the result as its receipt names
it), never a mix, and the plain rerun at once gives the new day. The step-1 kills on
S3 are ``test_crash.py``'s S3 cases; this module starts from the same first step-1 day.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Pipeline
from tests.integration import test_crash
from tests.integration.test_crash import SESSION, PausedRun, Sources, kill_step2_and_rerun

pytestmark = pytest.mark.integration

# test_crash's fixtures: whatever is left of a paused run is killed; the first step-1 day in the bucket.
paused, s3_sources = test_crash.paused, test_crash.s3_sources


@pytest.mark.parametrize(("point", "how"), [("extract", SESSION), ("export-before-swap", SESSION)])
def test_a_killed_step2_job_on_s3_leaves_the_old_or_the_new_day_and_reruns_at_once(
    s3_shared_pipeline: Pipeline,
    s3_sources: Sources,
    paused: list[PausedRun],
    tmp_path: Path,
    point: str,
    how: str,
) -> None:
    kill_step2_and_rerun(s3_shared_pipeline, s3_sources, paused, tmp_path, point, how)
