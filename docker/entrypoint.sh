#!/usr/bin/env bash
# The image's entrypoint. Runs any command in the project folder as user `app`;
# `setup` is the one-shot start-up step of docker-compose.yml (the same
# scripts/setup.sh step that `make setup` runs, then Meltano's and Airflow's databases).
#
# Airflow's JWT and API secret keys: AIRFLOW_JWT_SECRET / AIRFLOW_SECRET_KEY when set,
# else random ones that `setup` generates once into $SECRETS_DIR (the airflow-secrets
# volume), so that no deployment runs on a well-known key and every container of one
# deployment (api-server, scheduler, workers) shares the same ones.
set -euo pipefail
cd /project
SECRETS_DIR=${AIRFLOW_SECRETS_DIR:-/var/lib/airflow-secrets}

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
    echo "entrypoint: $name is not set and $file is missing: run the setup service first (docker compose up does)" >&2
    return 1
  fi
}

# generate_secret NAME: a random key into $SECRETS_DIR/NAME, once (kept across `up`s).
generate_secret() {
  local file=$SECRETS_DIR/$1
  if [ -n "${!1:-}" ] || [ -s "$file" ]; then return; fi
  (umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(48), end="")' >"$file.partial")
  mv "$file.partial" "$file"
  echo "generated $1 (kept in the airflow-secrets volume)"
}

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
  generate_secret AIRFLOW_JWT_SECRET
  generate_secret AIRFLOW_SECRET_KEY
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
  # does), and the user by its Meltano setting name (the plugin declares it).
  passwords=/tmp/airflow-auth/passwords.json
  users=$(.venv/bin/python scripts/airflow_auth.py "$passwords")
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$passwords
  export AIRFLOW_CORE_SIMPLE_AUTH_MANAGER_USERS=$users
fi

exec "$@"
