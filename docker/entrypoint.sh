#!/usr/bin/env bash
# The image's entrypoint. Runs any command in the project folder as user `app`;
# `secrets` and `setup` are the one-shot start-up steps of docker-compose.yml:
# `secrets` first, the generated secrets; `setup` once the databases are up (the same
# scripts/setup.sh step that `make setup` runs, then Meltano's and Airflow's databases).
#
# Secrets that are not set are generated once by `secrets`, each into a file (mode
# 0600, owner `app`) in a volume that only the containers needing it mount, and kept
# across `up`s (`down -v` deletes them):
#   POSTGRES_ADMIN_PASSWORD (admin-secrets: the PostgreSQL servers, setup, test): the
#     value of POSTGRES_ADMIN_PASSWORD at the first `up` when set, else random. Never a
#     well-known default: every container that runs jobs reaches the servers.
#   AIRFLOW_ADMIN_PASSWORD (airflow-login: the api-server), when AIRFLOW_ADMIN_PASSWORD
#     is empty or the default `admin`: random, printed once, when generated.
#   AIRFLOW_JWT_SECRET, AIRFLOW_SECRET_KEY (airflow-secrets: every Airflow container):
#     when not set, random, so that no deployment runs on a well-known key and every
#     container of one deployment (api-server, scheduler, workers) shares the same ones.
set -euo pipefail
cd /project
SECRETS_DIR=${AIRFLOW_SECRETS_DIR:-/var/lib/airflow-secrets}
LOGIN_DIR=/var/lib/airflow-login
ADMIN_SECRETS_DIR=/var/lib/admin-secrets
# The Airflow login's password that counts as not set.
DEFAULT_LOGIN_PASSWORD=admin

# secret NAME: $NAME when set, else the generated file of that name.
secret() {
  local name=$1 file=$SECRETS_DIR/$1
  if [[ ${!name:-} == change-me-* ]]; then
    echo "entrypoint: $name is the well-known example value of older .env files: delete that line from .env (a random key is generated)" >&2
    return 1
  elif [ -n "${!name:-}" ]; then
    printf '%s' "${!name}"
  elif [ -s "$file" ]; then
    cat "$file"
  else
    echo "entrypoint: $name is not set and $file is missing: run the setup-secrets service first (docker compose up does)" >&2
    return 1
  fi
}

# generate_secret FILE [VALUE]: VALUE (else a random key) into FILE, once: an existing
# FILE is kept. Readable by its owner only. Exit status 0 only when written now.
generate_secret() {
  local file=$1 value=${2:-}
  if [ -s "$file" ]; then return 1; fi
  if [ -z "$value" ]; then
    value=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(48), end="")')
  fi
  (umask 077 && printf '%s' "$value" >"$file.partial")
  mv "$file.partial" "$file"
}

login_password_is_default() {
  [ -z "${AIRFLOW_ADMIN_PASSWORD:-}" ] || [ "$AIRFLOW_ADMIN_PASSWORD" = "$DEFAULT_LOGIN_PASSWORD" ]
}

if [ "${1:-}" = secrets ]; then
  for name in AIRFLOW_JWT_SECRET AIRFLOW_SECRET_KEY; do
    if [ -z "${!name:-}" ] && generate_secret "$SECRETS_DIR/$name"; then
      echo "generated $name (kept in the airflow-secrets volume)"
    fi
  done
  if generate_secret "$ADMIN_SECRETS_DIR/POSTGRES_ADMIN_PASSWORD" "${POSTGRES_ADMIN_PASSWORD:-}"; then
    origin=generated
    [ -z "${POSTGRES_ADMIN_PASSWORD:-}" ] || origin="from POSTGRES_ADMIN_PASSWORD"
    echo "the databases' administrator password: $origin (kept in the admin-secrets volume)"
  fi
  if login_password_is_default && generate_secret "$LOGIN_DIR/AIRFLOW_ADMIN_PASSWORD"; then
    # Printed this once: AIRFLOW_ADMIN_PASSWORD was empty or the well-known default.
    echo "Airflow login (generated, shown only now; kept in the airflow-login volume): ${AIRFLOW_ADMIN_USER:-admin} / $(cat "$LOGIN_DIR/AIRFLOW_ADMIN_PASSWORD")"
  fi
  exit 0
fi

# The administrator's password, in the containers that mount admin-secrets (setup, test).
if [ -r "$ADMIN_SECRETS_DIR/POSTGRES_ADMIN_PASSWORD" ]; then
  POSTGRES_ADMIN_PASSWORD=$(cat "$ADMIN_SECRETS_DIR/POSTGRES_ADMIN_PASSWORD")
  export POSTGRES_ADMIN_PASSWORD
fi

# Started as root (the compose file's setup service only): a missing ./data (and
# ./data/sources) is created by Docker as root-owned, so hand root's entries to
# `app`, then drop root. Files of another user are left alone: set APP_UID to yours.
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$DATA_DIR"
  find "$DATA_DIR" -user 0 -exec chown app:app {} +
  exec setpriv --reuid=app --regid=app --init-groups "$0" "$@"
fi

if [ "${1:-}" = setup ]; then
  # docker-compose.yml mounts $NORTHWIND_DATA_DIR of the host (if set) at
  # /northwind and says so in NORTHWIND_HOST_DIR; unset, the files are downloaded
  # and checked by sha256, exactly as `make setup` does.
  if [ -n "${NORTHWIND_HOST_DIR:-}" ]; then
    export NORTHWIND_DATA_DIR=/northwind
  else
    unset NORTHWIND_DATA_DIR
  fi
  scripts/setup.sh sources
  # Meltano's system database (run records, in Postgres): its tables are created
  # before any job runs, so that two first jobs never race to create them.
  .venv/bin/meltano --no-environment state list >/dev/null
  if [ -d .meltano/utilities/airflow ]; then
    airflow db migrate
  fi
  echo "setup done"
  exit 0
fi

if [ "${1:-}" = airflow ]; then
  AIRFLOW__API_AUTH__JWT_SECRET=$(secret AIRFLOW_JWT_SECRET)
  AIRFLOW__API__SECRET_KEY=$(secret AIRFLOW_SECRET_KEY)
  export AIRFLOW__API_AUTH__JWT_SECRET AIRFLOW__API__SECRET_KEY
fi
if [ "${1:-}" = airflow ] && [ "${2:-}" = api-server ]; then
  # The login: Airflow's passwords file rewritten from AIRFLOW_ADMIN_USER /
  # AIRFLOW_ADMIN_PASSWORD at every start (scripts/airflow_auth.py, as `make airflow`
  # does), and the user by its Meltano setting name (the plugin declares it). An empty
  # or default password: the generated one.
  if login_password_is_default; then
    [ -s "$LOGIN_DIR/AIRFLOW_ADMIN_PASSWORD" ] ||
      { echo "entrypoint: AIRFLOW_ADMIN_PASSWORD is empty or '$DEFAULT_LOGIN_PASSWORD' and $LOGIN_DIR/AIRFLOW_ADMIN_PASSWORD is missing: run the setup-secrets service first (docker compose up does)" >&2 && exit 1; }
    AIRFLOW_ADMIN_PASSWORD=$(cat "$LOGIN_DIR/AIRFLOW_ADMIN_PASSWORD")
    export AIRFLOW_ADMIN_PASSWORD
  fi
  passwords=/tmp/airflow-auth/passwords.json
  users=$(.venv/bin/python scripts/airflow_auth.py "$passwords")
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$passwords
  export AIRFLOW_CORE_SIMPLE_AUTH_MANAGER_USERS=$users
fi

exec "$@"
