#!/usr/bin/env bash
# `make run [DATE=YYYY-MM-DD]`: the three jobs for one day. The two step-1 jobs read
# different sources and write different folders, so they run side by side (on two
# cores that hides most of one job's start-up); step 2 runs once both succeeded.
# On a failure its last lines say which step failed, why (the one-line cause its
# components recorded, as the Airflow task log's CAUSE: line says it) and the exact
# command that reruns it.
set -uo pipefail
cd "$(dirname "$0")/.."

day=${1:-$(date -u +%Y-%m-%d)}
if ! [[ $day =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || ! date -u -d "$day" +%F >/dev/null 2>&1; then
  echo "DATE=$day is not a date of the form YYYY-MM-DD" >&2
  exit 2
fi

# Each job's components record why they failed here (pipeline.errors.report_failure).
failures=$(mktemp -d)
trap 'rm -rf "$failures"' EXIT

run_job() {
  PIPELINE_DATE=$day PIPELINE_FAILURE_FILE="$failures/$1.jsonl" .venv/bin/meltano run "$1"
}

failed() {
  local cause
  cause=$(.venv/bin/python scripts/failure_cause.py "$1" "$2" "$failures/$1.jsonl")
  echo "FAILED: step $1 for $day: $cause" >&2
  echo "  rerun it with: PIPELINE_DATE=$day .venv/bin/meltano run $1   (then the later steps, or: make run DATE=$day)" >&2
}

declare -A pids
for job in postgres-to-lfs csv-to-lfs; do
  echo "== $job for $day"
  run_job "$job" &
  pids[$job]=$!
done
status=0
for job in postgres-to-lfs csv-to-lfs; do
  wait "${pids[$job]}"
  code=$?
  if [ "$code" -ne 0 ]; then
    failed "$job" "$code"
    status=1
  fi
done
[ "$status" -eq 0 ] || exit 1

echo "== lfs-to-analytics for $day"
run_job lfs-to-analytics
code=$?
if [ "$code" -ne 0 ]; then
  failed lfs-to-analytics "$code"
  exit 1
fi
echo "done: $day is in the analytics database; result in ${DATA_DIR:-data}/results/$day/"
