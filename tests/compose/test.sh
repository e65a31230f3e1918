#!/usr/bin/env bash
# `make compose-test`: docker-compose.yml for real, on the engine that answers here.
#
# up (the unchanged compose file), every service healthy; the REST API refuses
# anonymous and wrong-password calls, the secret keys were generated; the default
# login password `admin` was replaced by a generated one, printed once by
# setup-secrets (not again by its next run): that one works, `admin` does not; the
# secret files are 0600 and only where they are needed; every credential that a job
# could find in its container is no superuser, runs no program and cannot read
# Airflow's metadata, the administrator's password is in no job's environment and its
# default is refused; one day triggered through the REST API succeeds; the task instances ran
# where they should (LocalExecutor: the scheduler; COMPOSE_TEST_CELERY=1, profile
# `celery` with two workers: only the workers, each at least one); the dated files
# and the result are on the host and in the analytics database, owned by the jobs'
# role, and the source's role cannot write the source; Meltano's run records are in
# Postgres. Always ends with `down -v`.
#
# COMPOSE_TEST_DISTRIBUTED=1: the same on profile `distributed` instead, workers that
# share no file system: the object store (its bucket and the CSV source put there by
# object-store-init), two workers with no ./data and no log volume (checked from their
# mounts), step 1's DAGs pinned to worker-a's queue and step 2's to worker-b's
# (PIPELINE_JOB_QUEUES): the day's task instances ran where pinned, so step 1 and step 2
# on different workers; each job task's log read through the REST API (from the worker's
# log server); the day's receipts, objects and result read and checked in the bucket from
# inside the network (tests/compose/check_bucket.py), nothing on the host's ./data.
#
# Needs an engine and compose (COMPOSE, default docker-compose). On our CI machines
# .ci/docker.sh provides both and local stand-ins of the base images.
# Knobs: COMPOSE_TEST_CELERY=1, COMPOSE_TEST_DISTRIBUTED=1, COMPOSE_TEST_DAY (2024-01-02), COMPOSE_TEST_PORT (a
# free one), NORTHWIND_DATA_DIR (local source files; else downloaded, as in `make setup`).
set -euo pipefail
cd "$(dirname "$0")/../.."

DAY=${COMPOSE_TEST_DAY:-2024-01-02}
PORT=${COMPOSE_TEST_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
RUN_DIR=$(mktemp -d /tmp/compose-test.XXXXXX)
START=$SECONDS
read -ra COMPOSE <<<"${COMPOSE:-docker-compose}"
COMPOSE+=(--project-directory "$PWD" -p northwind-compose-test -f docker-compose.yml)
SERVICES=(northwind-db analytics-db airflow-db airflow-apiserver airflow-scheduler airflow-dag-processor)
UP=(up -d)
WORKERS=0
DISTRIBUTED=${COMPOSE_TEST_DISTRIBUTED:-0}
if [ "$DISTRIBUTED" = 1 ]; then
  WORKERS=2
  WORKER_SERVICES=(worker-a worker-b)
  COMPOSE+=(--profile distributed)
  SERVICES+=(redis object-store "${WORKER_SERVICES[@]}")
  export AIRFLOW_CORE_EXECUTOR=CeleryExecutor
  # Step 1 on worker-a, step 2 on worker-b: each serves only its step's queue.
  export PIPELINE_JOB_QUEUES="postgres-to-lfs=step1 csv-to-lfs=step1 lfs-to-analytics=step2"
  export WORKER_A_QUEUES=step1 WORKER_B_QUEUES=step2
elif [ "${COMPOSE_TEST_CELERY:-0}" = 1 ]; then
  WORKERS=2
  WORKER_SERVICES=(airflow-worker)
  COMPOSE+=(--profile celery)
  SERVICES+=(redis airflow-worker)
  UP+=(--scale "airflow-worker=$WORKERS")
  export AIRFLOW_CORE_EXECUTOR=CeleryExecutor
fi

say() { printf '== [%4ss] %s\n' "$((SECONDS - START))" "$*"; }
exec 3>&2  # fail() writes here, so that its message survives wait_for's redirection
fail() { printf 'COMPOSE TEST FAILED after %ss: %s\n' "$((SECONDS - START))" "$*" >&3; exit 1; }
wait_for() { # SECONDS WHAT COMMAND...: poll every 3 s, fail with WHAT after SECONDS
  local limit=$1 what=$2 t0=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -lt "$limit" ] || fail "timed out after ${limit}s waiting for $what"
    sleep 3
  done
  say "$what: ok after $((SECONDS - t0))s"
}
cleanup() {
  local rc=$?
  set +e
  if [ "$rc" != 0 ]; then
    echo "---- service states and the last log lines (failure) ----" >&2
    "${COMPOSE[@]}" ps >&2
    "${COMPOSE[@]}" logs --no-color --tail=60 >&2
  fi
  say "down -v"
  "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1
  rm -rf "$RUN_DIR"
  say "exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- up ------------------------------------------------------------------------
# The login's default password and no secret keys, no administrator's password: the
# first `up` must generate them.
export HOST_DATA_DIR=$RUN_DIR/data AIRFLOW_PUBLISH=127.0.0.1:$PORT AIRFLOW_ADMIN_USER=compose-test
export AIRFLOW_ADMIN_PASSWORD=admin AIRFLOW_JWT_SECRET='' AIRFLOW_SECRET_KEY='' POSTGRES_ADMIN_PASSWORD=''
mkdir -p "$HOST_DATA_DIR"
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true  # leftovers of an interrupted run
t=$SECONDS
"${COMPOSE[@]}" build --quiet
say "image built ($((SECONDS - t))s); ${UP[*]} (executor ${AIRFLOW_CORE_EXECUTOR:-LocalExecutor})"
t=$SECONDS
"${COMPOSE[@]}" "${UP[@]}"
healthy() { # SERVICE: every container of it (a scaled service has several)
  local ids id
  ids=$("${COMPOSE[@]}" ps -q "$1")
  [ -n "$ids" ] || return 1
  for id in $ids; do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ] || return 1
  done
}
for service in "${SERVICES[@]}"; do
  wait_for 300 "$service healthy" healthy "$service"
done
[ "$(docker inspect -f '{{.State.ExitCode}}' "$("${COMPOSE[@]}" ps -q setup)")" = 0 ] || fail "the setup service did not exit 0"
if [ "$DISTRIBUTED" = 1 ]; then
  [ "$(docker inspect -f '{{.State.ExitCode}}' "$("${COMPOSE[@]}" ps -q object-store-init)")" = 0 ] ||
    fail "object-store-init did not exit 0"
  # What a worker mounts: the secret keys only (read-only), no ./data, no log volume.
  for service in "${WORKER_SERVICES[@]}"; do
    mounts=$(docker inspect -f '{{range .Mounts}}{{.Destination}}:{{.RW}} {{end}}' "$("${COMPOSE[@]}" ps -q "$service")")
    [ "$mounts" = "/var/lib/airflow-secrets:false " ] || fail "$service mounts more than the secret keys: $mounts"
  done
  say "object store up, bucket and CSV source in it; the workers mount nothing but the secret keys (read-only)"
fi
BASE=http://$AIRFLOW_PUBLISH
API=$BASE/api/v2
wait_for 30 "Airflow UI on the host at $BASE" curl -sf -m 5 "$API/monitor/health"
say "all services up ($((SECONDS - t))s)"

# ---- the login and the secrets -----------------------------------------------------
status() { curl -s -o /dev/null -w '%{http_code}' -m 30 "$@"; }
login() { # USER PASSWORD: the body of POST /auth/token
  curl -s -m 30 -H 'Content-Type: application/json' -d "{\"username\": \"$1\", \"password\": \"$2\"}" "$BASE/auth/token"
}
# The password setup-secrets generated for the default `admin`, from its one line.
"${COMPOSE[@]}" logs --no-color setup-secrets >"$RUN_DIR/setup-secrets.log"
password=$(sed -n "s|.*Airflow login (generated, shown only now; kept in the airflow-login volume): $AIRFLOW_ADMIN_USER / ||p" "$RUN_DIR/setup-secrets.log")
[ -n "$password" ] && [ "$password" != admin ] || fail "setup-secrets printed no generated Airflow login (its log: $(cat "$RUN_DIR/setup-secrets.log"))"
[ "$(status "$API/dags")" = 401 ] || fail "GET /api/v2/dags without a login did not answer 401"
[ "$(status -H 'Content-Type: application/json' -d '{"username": "compose-test", "password": "wrong"}' "$BASE/auth/token")" = 401 ] ||
  fail "POST /auth/token with a wrong password did not answer 401"
[ "$(status -H 'Content-Type: application/json' -d '{"username": "compose-test", "password": "admin"}' "$BASE/auth/token")" = 401 ] ||
  fail "POST /auth/token with the default password 'admin' did not answer 401"
TOKEN=$(login "$AIRFLOW_ADMIN_USER" "$password" | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
  fail "POST /auth/token refused the generated password that setup-secrets printed"
say "REST API: anonymous, wrong-password and default-password ('admin') calls refused (401), the generated login accepted"
# Printed once: the next run of setup-secrets keeps every secret and shows none.
"${COMPOSE[@]}" run --rm -T --no-deps setup-secrets >"$RUN_DIR/setup-secrets-again.log" 2>&1 ||
  fail "setup-secrets failed when run again: $(cat "$RUN_DIR/setup-secrets-again.log")"
if grep -e 'generated' -e "$password" "$RUN_DIR/setup-secrets-again.log"; then
  fail "setup-secrets run again generated or printed a secret (above)"
fi
[ "$(status -H 'Content-Type: application/json' -d "{\"username\": \"compose-test\", \"password\": \"$password\"}" "$BASE/auth/token")" = 201 ] ||
  fail "the generated login no longer works after setup-secrets ran again"
say "setup-secrets again: nothing generated, nothing shown, the login unchanged"
# Each secret file 0600, owned by app, and only where it is needed.
file_mode() { # SERVICE FILE: its mode and owner's uid, e.g. "600 1000"
  "${COMPOSE[@]}" exec -T "$1" stat -c '%a %u' "$2"
}
app_uid=${APP_UID:-1000}
for key in AIRFLOW_JWT_SECRET AIRFLOW_SECRET_KEY; do
  [ "$(file_mode airflow-apiserver "/var/lib/airflow-secrets/$key")" = "600 $app_uid" ] ||
    fail "$key was not generated into the airflow-secrets volume, mode 0600"
done
[ "$(file_mode airflow-apiserver /var/lib/airflow-login/AIRFLOW_ADMIN_PASSWORD)" = "600 $app_uid" ] ||
  fail "the generated login is not in the airflow-login volume, mode 0600"
for db in northwind-db analytics-db airflow-db; do
  [ "$(file_mode "$db" /var/lib/admin-secrets/POSTGRES_ADMIN_PASSWORD)" = "600 $app_uid" ] ||
    fail "$db: the administrator's password is not in the admin-secrets volume, mode 0600"
done
job_hosts=(airflow-scheduler)
[ "$WORKERS" = 0 ] || job_hosts+=("${WORKER_SERVICES[@]}")
for service in "${job_hosts[@]}"; do
  for id in $("${COMPOSE[@]}" ps -q "$service"); do
    [ -z "$(docker exec "$id" find /var/lib/admin-secrets /var/lib/airflow-login -type f)" ] ||
      fail "$service: the administrator's password or the login is in a container that runs jobs"
  done
done
say "secrets generated on first up: keys, login, administrator (0600, only in the containers that need them)"

# ---- what a job could find, tried as an attacker would ------------------------------
admin_sha256=$("${COMPOSE[@]}" exec -T northwind-db cat /var/lib/admin-secrets/POSTGRES_ADMIN_PASSWORD | python3 -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
for service in "${job_hosts[@]}"; do
  for id in $("${COMPOSE[@]}" ps -q "$service"); do
    docker exec -i "$id" .venv/bin/python - "$admin_sha256" northwind-db analytics-db airflow-db \
      <tests/compose/check_credentials.py || fail "$service: a job's container holds too much (above)"
  done
done
say "credentials a job can find: none a superuser or able to run a program; Airflow's metadata Airflow's alone"

# ---- one day through Airflow's REST API, logged in -------------------------------
t=$SECONDS
RUN_ID=compose-test-$DAY
api() { curl -sf -m 60 -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" "$@"; }
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
dags=$(api "$API/dags" | json '" ".join(x["dag_id"] for x in d["dags"])')
[ -n "$dags" ] || fail "Airflow lists no DAG"
paused=$(api "$API/dags?paused=true" | json '" ".join(x["dag_id"] for x in d["dags"])')
[ -z "$paused" ] || fail "paused at creation: $paused (the airflow plugin's default is unpaused)"
for dag in $dags; do
  api -X POST "$API/dags/$dag/dagRuns" -d "{\"dag_run_id\": \"$RUN_ID\", \"logical_date\": \"${DAY}T00:00:00Z\"}" >/dev/null ||
    fail "cannot trigger $dag for $DAY"
done
say "triggered $dags for $DAY (run id $RUN_ID)"
run_done() { # DAG: true once the run succeeded; a failed run fails the test at once
  local state
  state=$(api "$API/dags/$1/dagRuns/$RUN_ID" | json 'd["state"]') || return 1
  [ "$state" != failed ] || fail "the run of $1 for $DAY failed"
  [ "$state" = success ]
}
for dag in $dags; do
  wait_for 900 "$dag run for $DAY succeeded" run_done "$dag"
done
say "day $DAY done through Airflow ($((SECONDS - t))s)"

# ---- where the tasks ran, from Airflow itself -------------------------------------
# A task instance records the hostname of the container that ran it (its short id).
hostnames() { # SERVICE
  local id
  for id in $("${COMPOSE[@]}" ps -q "$1"); do docker inspect -f '{{.Config.Hostname}}' "$id"; done
}
scheduler_host=$(hostnames airflow-scheduler)
expected_hosts=$scheduler_host
if [ "$WORKERS" -gt 0 ]; then
  expected_hosts=$(for service in "${WORKER_SERVICES[@]}"; do hostnames "$service"; done)
fi
api "$API/dags/~/dagRuns/~/taskInstances?limit=1000" >"$RUN_DIR/task_instances.json" || fail "cannot list the task instances"
python3 tests/compose/check_hosts.py "$RUN_DIR/task_instances.json" "$scheduler_host" "$WORKERS" $expected_hosts ||
  fail "tasks ran in the wrong place (above)"

if [ "$DISTRIBUTED" = 1 ]; then
  # ---- distributed: step 1 and step 2 on different workers, their logs, the day in the bucket ----
  step1_host=$(hostnames worker-a) step2_host=$(hostnames worker-b)
  python3 tests/compose/check_pinned.py "$RUN_DIR/task_instances.json" "$RUN_ID" "daily-postgres-to-lfs=$step1_host" \
    "daily-csv-to-lfs=$step1_host" "daily-lfs-to-analytics=$step2_host" >"$RUN_DIR/job_tasks" ||
    fail "the day's tasks did not run on the workers of their queues (above)"
  say "step 1 ran on $step1_host, step 2 on $step2_host (queues step1, step2), from the task instances' hostnames"
  # Each job task's log through the REST API: the api-server shares no volume with the
  # workers, so it can only come from the worker's log server.
  while read -r dag task try; do
    api -H 'Accept: application/json' "$API/dags/$dag/dagRuns/$RUN_ID/taskInstances/$task/logs/$try?full_content=true" \
      >"$RUN_DIR/log.json" || fail "cannot read the log of $dag/$task through the REST API"
    grep -q "PIPELINE_DATE=$DAY .* run $task" "$RUN_DIR/log.json" ||
      fail "the log of $dag/$task (try $try) from the REST API is not the task's: $(head -c 600 "$RUN_DIR/log.json")"
  done <"$RUN_DIR/job_tasks"
  say "task logs: each job task's log read through the REST API, served by its worker"
  counts=$("${COMPOSE[@]}" exec -T worker-b .venv/bin/python - "$DAY" <tests/compose/check_bucket.py) ||
    fail "the day in the bucket is missing or wrong (above)"
  read -r csv_rows expected <<<"$counts"
  for f in postgres csv results _runs; do
    [ ! -e "$HOST_DATA_DIR/$f" ] || fail "the day reached the host's ./data ($HOST_DATA_DIR/$f): it must be only in the bucket"
  done
  say "bucket: the step-1 receipts, every object they name (sha256, rows) and the result; nothing in the host's ./data"
fi

# ---- files, result, roles, run records ---------------------------------------------
if [ "$DISTRIBUTED" != 1 ]; then
  result=$HOST_DATA_DIR/results/$DAY/orders_with_details.csv
  for f in "$HOST_DATA_DIR/postgres/orders/$DAY/orders.csv" "$HOST_DATA_DIR/postgres/orders/$DAY/_SUCCESS" \
    "$HOST_DATA_DIR/csv/$DAY/order_details.csv" "$HOST_DATA_DIR/csv/$DAY/_SUCCESS" "$result" "${result%.csv}.json"; do
    [ -e "$f" ] || fail "missing on the host: $f"
  done
  count_rows() { python3 -c 'import csv, sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=""))) - 1)' "$1"; }
  csv_rows=$(count_rows "$result")
  expected=$(count_rows "$HOST_DATA_DIR/csv/$DAY/order_details.csv")
fi
# As the jobs' roles, in the scheduler's container: the rows of the view, and the roles' rights.
db_rows=$("${COMPOSE[@]}" exec -T airflow-scheduler .venv/bin/python - "$DAY" <tests/compose/check_databases.py | tr -d '[:space:]') ||
  fail "the analytics database or the jobs' roles are wrong (above)"
say "rows: result CSV $csv_rows, analytics view $db_rows, order_details $expected"
say "roles: the analytics objects are the analytics role's; the source role cannot write"
if [ "$csv_rows" -le 0 ] || [ "$csv_rows" != "$db_rows" ] || [ "$csv_rows" != "$expected" ]; then
  fail "result rows differ: CSV $csv_rows, view $db_rows, order_details $expected"
fi
meltano_runs=$("${COMPOSE[@]}" exec -T airflow-db sh -c \
  "psql -U \"\$POSTGRES_USER\" -d meltano -tAc \"SELECT count(*) FROM runs WHERE job_name LIKE '%:$DAY' AND state = 'SUCCESS'\"" | tr -d '[:space:]')
[ "${meltano_runs:-0}" -ge 3 ] || fail "Meltano's system database (meltano on airflow-db) holds ${meltano_runs:-no} successful runs for $DAY, expected 3"
say "Meltano's system database in Postgres: $meltano_runs successful runs for $DAY"
say "COMPOSE TEST PASSED in $((SECONDS - START))s"
