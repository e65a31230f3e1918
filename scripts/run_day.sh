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

# Each job is bounded as in Airflow: PIPELINE_JOB_TIMEOUT_MINUTES (the environment, else .env;
# default 60, see README "Operations"); `timeout` stops the job's whole process group.
timeout_minutes=${PIPELINE_JOB_TIMEOUT_MINUTES:-$(sed -n 's/^PIPELINE_JOB_TIMEOUT_MINUTES=//p' .env 2>/dev/null | tail -n 1 | tr -d "\"'")}
timeout_minutes=${timeout_minutes:-60}
if ! [[ $timeout_minutes =~ ^[0-9]*[.]?[0-9]+$ ]] || ! [[ $timeout_minutes =~ [1-9] ]]; then
  echo "PIPELINE_JOB_TIMEOUT_MINUTES=$timeout_minutes is not a number of minutes above 0 (unset: 60)" >&2
  exit 2
fi
bounded=(timeout --kill-after=10s "${timeout_minutes}m")
# `timeout` gives each job a process group of its own, which a Ctrl-C at the terminal does not reach: pass it on.
trap 'kill -TERM $(jobs -p) 2>/dev/null; wait; exit 130' INT TERM
timed_out() {
  echo "TIMEOUT: step $1 for $day ran longer than PIPELINE_JOB_TIMEOUT_MINUTES=$timeout_minutes and was stopped" >&2
}

failed() {
  echo "FAILED: step $1 for $day. Fix the cause above, then rerun it with:" >&2
  echo "  PIPELINE_DATE=$day .venv/bin/meltano run $1   (then the later steps, or: make run DATE=$day)" >&2
}

declare -A pids
for job in postgres-to-lfs csv-to-lfs; do
  echo "== $job for $day"
  PIPELINE_DATE=$day "${bounded[@]}" .venv/bin/meltano run "$job" &
  pids[$job]=$!
done
status=0
for job in postgres-to-lfs csv-to-lfs; do
  wait "${pids[$job]}"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -ne 124 ] || timed_out "$job"
    failed "$job"
    status=1
  fi
done
[ "$status" -eq 0 ] || exit 1

echo "== lfs-to-analytics for $day"
PIPELINE_DATE=$day "${bounded[@]}" .venv/bin/meltano run lfs-to-analytics &
wait $!
rc=$?
if [ "$rc" -ne 0 ]; then
  [ "$rc" -ne 124 ] || timed_out lfs-to-analytics
  failed lfs-to-analytics
  exit 1
fi
echo "done: $day is in the analytics database; result in ${DATA_DIR:-data}/results/$day/"
