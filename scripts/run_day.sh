#!/usr/bin/env bash
# `make run [DATE=YYYY-MM-DD]`: the three jobs for one day, in order. Stops at the
# first failure and says which step failed and the exact command that reruns it.
set -uo pipefail
cd "$(dirname "$0")/.."

day=${1:-$(date -u +%Y-%m-%d)}
if ! [[ $day =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || ! date -u -d "$day" +%F >/dev/null 2>&1; then
  echo "DATE=$day is not a date of the form YYYY-MM-DD" >&2
  exit 2
fi

for job in postgres-to-lfs csv-to-lfs lfs-to-analytics; do
  echo "== $job for $day"
  if ! PIPELINE_DATE=$day .venv/bin/meltano run "$job"; then
    echo "FAILED: step $job for $day. Fix the cause above, then rerun it with:" >&2
    echo "  PIPELINE_DATE=$day .venv/bin/meltano run $job   (then the later steps, or: make run DATE=$day)" >&2
    exit 1
  fi
done
echo "done: $day is in the analytics database; result in ${DATA_DIR:-data}/results/$day/"
