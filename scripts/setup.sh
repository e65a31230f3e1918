#!/usr/bin/env bash
# `make setup`: everything a fresh clone needs, idempotent (safe to run again).
#
# Also the image's build and start-up, step by step, so that the tested path and
# the image cannot drift apart (see Dockerfile and docker-compose.yml):
#   scripts/setup.sh          all the steps below, in order (make setup)
#   scripts/setup.sh config   .env and .env.admin from their examples, readable by their owner only
#   scripts/setup.sh venv     .venv with Meltano and the project's packages  (image build)
#   scripts/setup.sh plugins  every Meltano plugin, installed now, never at run time (image build)
#   scripts/setup.sh sources  source files, databases, seed                  (container start)
set -euo pipefail
cd "$(dirname "$0")/.."

step=${1:-all}
case $step in all | config | venv | plugins | sources) ;; *)
  echo "usage: $0 [all|config|venv|plugins|sources]" >&2
  exit 2
  ;;
esac

# Configuration comes from .env (created from the example by `make setup`), which
# Meltano and scripts/setup_sources.py read themselves; in a container there is no
# .env and the environment is set by docker-compose.yml. The database administrator's
# settings are in .env.admin instead, which only the set-up and the tests read:
# `meltano run` hands the whole .env to every plugin. Both hold passwords, so both
# are readable by their owner only (0600), also when they exist already.
private_copy() { # FILE: FILE from FILE.example when missing; an existing FILE made 0600
  if [ ! -f "$1" ]; then
    (umask 077 && cp "$1.example" "$1")
  elif [ -n "$(find "$1" -perm /077)" ]; then
    chmod 600 "$1"
    echo "setup: $1 was readable by others; now by its owner only (0600)"
  fi
}
if [ "$step" = all ] || [ "$step" = config ]; then
  if grep -qE '^[[:space:]]*(export[[:space:]]+)?POSTGRES_ADMIN_' .env 2>/dev/null; then
    echo "setup: .env holds POSTGRES_ADMIN_* settings, which meltano run hands to every plugin: move those lines into .env.admin (see .env.admin.example), then run make setup again" >&2
    exit 1
  fi
  private_copy .env
  private_copy .env.admin
fi

if [ "$step" = all ] || [ "$step" = venv ]; then
  if [ ! -x .venv/bin/python ]; then
    python3.11 -m venv .venv
  fi
  .venv/bin/pip install --quiet --disable-pip-version-check -c constraints/project.txt -e '.[analytics,tools]' -e ./orchestrate
fi

if [ "$step" = all ] || [ "$step" = plugins ]; then
  # Plugins are installed here, never at run time (`meltano run` would otherwise
  # install a missing one in the middle of a job). Meltano installs with uv, which
  # writes no bytecode: every plugin start would then compile its imports again
  # wherever .pyc files cannot be written (read-only images, PYTHONDONTWRITEBYTECODE),
  # about twice the CPU of a start (docs/performance.md).
  UV_COMPILE_BYTECODE=1 .venv/bin/meltano install
fi

if [ "$step" = all ] || [ "$step" = sources ]; then
  .venv/bin/python scripts/setup_sources.py
fi

if [ "$step" = all ]; then
  echo "setup done: try 'make run'"
fi
