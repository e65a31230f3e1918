#!/usr/bin/env bash
# `make run [DATE=YYYY-MM-DD]`: the three jobs for one day. The two step-1 jobs read
# different sources and write different folders, so they run side by side (on two
# cores that hides most of one job's start-up); step 2 runs once both succeeded.
# On a failure it says which step failed and the exact command that reruns it.
set -uo pipefail
cd "$(dirname "$0")/.."

day=${1:-$(date -u +%Y-%m-%d)}
if ! [[ $day =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || ! date -u -d "$day" +%F >/dev/null 2>&1; then
  echo "DATE=$day is not a date of the form YYYY-MM-DD" >&2
  exit 2
fi

failed() {
  echo "FAILED: step $1 for $day. Fix the cause above, then rerun it with:" >&2
  echo "  PIPELINE_DATE=$day .venv/bin/meltano run $1   (then the later steps, or: make run DATE=$day)" >&2
}

declare -A pids
for job in postgres-to-lfs csv-to-lfs; do
  echo "== $job for $day"
  PIPELINE_DATE=$day .venv/bin/meltano run "$job" &
  pids[$job]=$!
done
status=0
for job in postgres-to-lfs csv-to-lfs; do
  if ! wait "${pids[$job]}"; then
    failed "$job"
    status=1
  fi
done
[ "$status" -eq 0 ] || exit 1

echo "== lfs-to-analytics for $day"
if ! PIPELINE_DATE=$day .venv/bin/meltano run lfs-to-analytics; then
  failed lfs-to-analytics
  exit 1
fi
echo "done: $day is in the analytics database; result in ${DATA_DIR:-data}/results/$day/"
