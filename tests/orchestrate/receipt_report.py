"""Print when a job's receipt for a day was written, as the step-2 sensor reads it, as JSON.

Run with the Airflow plugin's own interpreter (see dagbag_report.py): it checks that
Airflow's virtualenv reaches DATA_DIR, on local disk or in a bucket, with the
``AWS_*`` settings of the environment, exactly as ``SameDayRunSensor.poke`` does.

Usage: python receipt_report.py PROJECT_ROOT JOB DAY
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

from dag_generator.operators import receipt_file, receipt_time


def main() -> None:
    root, job, day = Path(sys.argv[1]), sys.argv[2], dt.date.fromisoformat(sys.argv[3])
    written = receipt_time(receipt_file(root, dict(os.environ), job, day))
    print(json.dumps({"written": written.isoformat() if written else None}))


if __name__ == "__main__":
    main()
