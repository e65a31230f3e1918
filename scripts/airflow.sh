#!/usr/bin/env bash
# Start a local Airflow for this project: migrate its metadata DB, then the
# dag-processor and the scheduler in the background and the api-server (UI on
# http://127.0.0.1:8080) in the foreground. Ctrl-C stops all three.
#
# Settings (AIRFLOW_HOME, dags folder, parallelism 4, loopback only) come from the
# `airflow` utility in orchestrate/airflow.meltano.yml. The metadata DB is SQLite in
# orchestrate/airflow/ unless AIRFLOW__DATABASE__SQL_ALCHEMY_CONN says otherwise;
# SQLite gives `database is locked` on CLI calls while the scheduler runs.
#
# Usage: scripts/airflow.sh          start everything
#        scripts/airflow.sh init     only migrate the DB (idempotent)
set -euo pipefail
cd "$(dirname "$0")/.."

airflow() { .venv/bin/meltano invoke airflow "$@"; }

if [[ ! -x .venv/bin/meltano ]]; then
  echo "airflow: .venv/bin/meltano is missing: run 'make setup' first" >&2
  exit 1
fi
if [[ -z "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}" ]] && ! grep -qs '^AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=' .env; then
  echo "airflow: metadata DB is SQLite (orchestrate/airflow/airflow.db). For fewer 'database is locked'" >&2
  echo "         errors: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://postgres:postgres@127.0.0.1:5432/airflow" >&2
fi

airflow db migrate
if [[ "${1:-}" == "init" ]]; then
  exit 0
fi

# Each background process gets its own process group, so that stopping one group
# also ends the workers Airflow forks (an api-server worker outlived its parent's
# SIGTERM in a test here).
set -m
pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

airflow dag-processor &
pids+=($!)
airflow scheduler &
pids+=($!)
echo "airflow: UI on http://127.0.0.1:8080 once the api-server is up; Ctrl-C stops Airflow" >&2
airflow api-server &
pids+=($!)
wait -n "${pids[@]}"
echo "airflow: one of the processes exited; stopping the others" >&2
