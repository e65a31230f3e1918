#!/usr/bin/env bash
# `make run [DATE=YYYY-MM-DD]`: the jobs for one day, as meltano.yml defines them
# (pipeline/jobs.py). The step-1 jobs read different sources and write different
# folders, so they run side by side (on two cores that hides most of one job's
# start-up); step 2 runs once all of them succeeded.
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

# A setting as the jobs get it: the environment's, else .env's last line for it.
setting() {
  local name=$1
  if [ -n "${!name:-}" ]; then echo "${!name}"; else sed -n "s/^$name=//p" .env 2>/dev/null | tail -n 1 | tr -d "\"'"; fi
}

# Each job is bounded as in Airflow: PIPELINE_JOB_TIMEOUT_MINUTES (the environment, else .env;
# default 60, see README "Operations"); `timeout` stops the job's whole process group.
timeout_minutes=$(setting PIPELINE_JOB_TIMEOUT_MINUTES)
timeout_minutes=${timeout_minutes:-60}
if ! [[ $timeout_minutes =~ ^[0-9]*[.]?[0-9]+$ ]] || ! [[ $timeout_minutes =~ [1-9] ]]; then
  echo "PIPELINE_JOB_TIMEOUT_MINUTES=$timeout_minutes is not a number of minutes above 0 (unset: 60)" >&2
  exit 2
fi
bounded=(timeout --kill-after=10s "${timeout_minutes}m")

# Each job's components record why they failed here (pipeline.core.errors.report_failure).
failures=$(mktemp -d)
trap 'rm -rf "$failures"' EXIT
# `timeout` gives each job a process group of its own, which a Ctrl-C at the terminal does not reach: pass it on.
trap 'kill -TERM $(jobs -p) 2>/dev/null; wait; exit 130' INT TERM

# In the background, waited for, so that the trap above runs while a job does.
run_job() {
  PIPELINE_DATE=$day PIPELINE_FAILURE_FILE="$failures/$1.jsonl" "${bounded[@]}" .venv/bin/meltano run "$1" &
}

failed() {
  local cause
  if [ "$2" -eq 124 ]; then
    cause="ran longer than PIPELINE_JOB_TIMEOUT_MINUTES=$timeout_minutes and was stopped (TIMEOUT)"
  else
    cause=$(.venv/bin/python scripts/failure_cause.py "$1" "$2" "$failures/$1.jsonl")
  fi
  echo "FAILED: step $1 for $day: $cause" >&2
  echo "  rerun it with: PIPELINE_DATE=$day .venv/bin/meltano run $1   (then the later steps, or: make run DATE=$day)" >&2
}

# The day's jobs, one a line: step 1's, then step 2.
order=$(.venv/bin/python -m pipeline.jobs) || exit 2
mapfile -t order <<<"$order"
step1_jobs=("${order[@]:0:${#order[@]}-1}")
step2_job=${order[-1]}

declare -A pids
for job in "${step1_jobs[@]}"; do
  echo "== $job for $day"
  run_job "$job"
  pids[$job]=$!
done
status=0
for job in "${step1_jobs[@]}"; do
  wait "${pids[$job]}"
  code=$?
  if [ "$code" -ne 0 ]; then
    failed "$job" "$code"
    status=1
  fi
done
[ "$status" -eq 0 ] || exit 1

echo "== $step2_job for $day"
run_job "$step2_job"
wait $!
code=$?
if [ "$code" -ne 0 ]; then
  failed "$step2_job" "$code"
  exit 1
fi
data_dir=$(setting DATA_DIR)
case ${data_dir:=data} in
  s3://*) result="${data_dir%/}/results/$day/_result.json, which names the objects" ;;
  *) result="$data_dir/results/$day/" ;;
esac
echo "done: $day is in the analytics database; result in $result"
