#!/usr/bin/env bash
# `make setup`: everything a fresh clone needs, idempotent (safe to run again).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -f .env ] || cp .env.example .env
set -a; source .env; set +a

if [ ! -x .venv/bin/python ]; then
  python3.11 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -e '.[analytics]'

# Plugins are installed here, never at run time (`meltano run` would otherwise
# install a missing one in the middle of a job). Meltano installs with uv, which
# writes no bytecode: every plugin start would then compile its imports again
# wherever .pyc files cannot be written (read-only images, PYTHONDONTWRITEBYTECODE),
# about twice the CPU of a start (docs/performance.md).
UV_COMPILE_BYTECODE=1 .venv/bin/meltano install

.venv/bin/python scripts/setup_sources.py
echo "setup done: try 'make run'"
