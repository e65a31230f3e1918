#!/usr/bin/env bash
# Start a local Airflow for this project: migrate its metadata DB, write the login's
# passwords file, then the api-server, the dag-processor and the scheduler, each in
# its own process group. Ctrl-C stops all three.
#
# Settings (AIRFLOW_HOME, dags folder, parallelism 4, loopback only, port 8080) come
# from the `airflow` utility in orchestrate/airflow.meltano.yml; change one by its
# Meltano name in .env or the shell (AIRFLOW_API_PORT=8090). The port is read once
# here and used everywhere: the api-server, the tasks' execution API URL, the wait.
# The login is AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD (.env), written to the
# passwords file at every start by scripts/airflow_auth.py.
# The metadata DB is SQLite in orchestrate/airflow/ unless AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
# says otherwise; SQLite gives `database is locked` on CLI calls while the scheduler runs.
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

# The plugin's settings as Meltano resolves them (defaults, .env, shell): one source for host, port, home.
read -r host port home < <(.venv/bin/meltano config print airflow 2>/dev/null | .venv/bin/python -c \
  'import json, sys; c = json.load(sys.stdin); print(c["api.host"], c["api.port"], c["home"])')
client_host=$host
[[ $host == 0.0.0.0 ]] && client_host=127.0.0.1
export AIRFLOW_API_PORT=$port
export AIRFLOW_CORE_EXECUTION_API_SERVER_URL="http://$client_host:$port/execution/"
url="http://$client_host:$port"

# Tasks read .env afresh at each run (orchestrate/dag_generator/job_env.py): they drop
# the values `meltano invoke` put into Airflow's environment from .env at this start.
# A key already set in this shell did not come from .env (it wins over .env, as in
# Meltano): it is not listed, so the tasks keep it (the benchmark's databases do).
PIPELINE_DOTENV_KEYS=$(.venv/bin/python -c 'import os; from pipeline.core.config import dotenv_file
print(",".join(k for k in dotenv_file(".env") if k not in os.environ))')
export PIPELINE_DOTENV_KEYS
if [[ -z "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}" && ,$PIPELINE_DOTENV_KEYS, != *,AIRFLOW__DATABASE__SQL_ALCHEMY_CONN,* ]]; then
  echo "airflow: metadata DB is SQLite (orchestrate/airflow/airflow.db). For fewer 'database is locked'" >&2
  echo "         errors: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://airflow:<password>@127.0.0.1:5432/airflow" >&2
  echo "         in .env, then make setup (it creates that role and its database, no superuser)" >&2
fi

# The login: users setting and passwords file from AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD.
users=$(.venv/bin/python scripts/airflow_auth.py "$home/simple_auth_manager_passwords.json.generated" .env)
export AIRFLOW_CORE_SIMPLE_AUTH_MANAGER_USERS=$users

airflow db migrate
if [[ "${1:-}" == "init" ]]; then
  exit 0
fi

# Each background process gets its own process group, so that stopping one group
# also ends the workers Airflow forks (an api-server worker outlived its parent's
# SIGTERM in a test here). The api-server stops last: task workers still running
# report to it, and hang when it is gone.
# A scheduler sometimes hangs in its shutdown with idle LocalExecutor workers (seen
# here): a group still there 30 s after SIGTERM gets SIGKILL.
set -m
pids=()
stop() {
  trap - EXIT INT TERM
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM -- "-${pids[i]}" 2>/dev/null || true
    for _ in $(seq 30); do
      kill -0 -- "-${pids[i]}" 2>/dev/null || break
      sleep 1
    done
    kill -KILL -- "-${pids[i]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

# The api-server first: task processes report to its execution API, so tasks the
# scheduler queued before it answers would fail.
airflow api-server --port "$port" &
pids+=($!)
ready=0
for _ in $(seq 120); do
  if curl -fsS -o /dev/null "$url/api/v2/monitor/health" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 1
done
if [[ $ready != 1 ]]; then
  echo "airflow: the api-server did not answer on $url within 120 s; stopping" >&2
  exit 1
fi
airflow dag-processor &
pids+=($!)
airflow scheduler &
pids+=($!)
echo "airflow: UI on $url (login: AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD from .env); Ctrl-C stops Airflow" >&2
echo "airflow: tasks read the project's .env at each run: an edit needs no restart" >&2
wait -n "${pids[@]}"
echo "airflow: one of the processes exited; stopping the others" >&2
