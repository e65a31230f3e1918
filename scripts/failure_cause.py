"""The one line that says why a job failed, for ``make run``'s closing FAILED line.

It is the line the Airflow task log ends with (``CAUSE: ...``): the same failure file
(``PIPELINE_FAILURE_FILE``, written by ``pipeline.core.errors.report_failure``) read by the
same code (``dag_generator.outcome``), so both say the same thing, with whether a
rerun as it is may pass (transient) or the cause must be fixed first (permanent).

Usage: ``failure_cause.py JOB EXIT_CODE FAILURE_FILE``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dag_generator.outcome import classify, read_failures


def cause_line(job: str, exit_code: int, failure_file: Path) -> str:
    """The cause, then what it means for the rerun."""
    records = read_failures(failure_file)
    if not records:
        return f"{job} exited with code {exit_code} without recording a cause (killed? a crash?): see its output above"
    outcome = classify(job, exit_code, records)
    meaning = "transient: the rerun below may pass as it is" if outcome.transient else "permanent: fix it, then rerun"
    return f"{outcome.cause} ({meaning})"


if __name__ == "__main__":
    print(cause_line(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])))
