#!/usr/bin/env bash
# The image's entrypoint. Runs any command in the project folder as user `app`;
# `setup` is the one-shot start-up step of docker-compose.yml (the same
# scripts/setup.sh step that `make setup` runs, then Meltano's and Airflow's databases).
set -euo pipefail
cd /project

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
  # Meltano's system database (run state, in a named volume): created before any job
  # runs, so that two first jobs never race to create it.
  .venv/bin/meltano --no-environment state list >/dev/null
  if [ -d .meltano/utilities/airflow ]; then
    airflow db migrate
  fi
  echo "setup done"
  exit 0
fi

exec "$@"
