#!/usr/bin/env bash
# `make ui-test`: the Airflow UI in a real browser (tests/ui). Installs what it needs
# when missing: Debian's chromium (apt; Playwright cannot download its own browser
# here) and Playwright from PyPI (the project's `ui-test` extra, locked in
# constraints/ui-test.txt), in a venv of its own (.venv-ui) so the project's venv
# does not carry a browser driver.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x /usr/bin/chromium ]]; then
  if [[ $(id -u) != 0 ]]; then
    echo "ui-test: /usr/bin/chromium is missing: sudo apt-get install chromium" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! .venv-ui/bin/python -c 'import playwright' 2>/dev/null || ! cmp -s constraints/ui-test.txt .venv-ui/constraints.txt; then
  rm -rf .venv-ui
  python3.11 -m venv .venv-ui
  .venv-ui/bin/pip install -q --disable-pip-version-check -c constraints/ui-test.txt -e '.[ui-test]'
  cp constraints/ui-test.txt .venv-ui/constraints.txt
fi
# Screenshots of each step, to look at after a run (git-ignored, like all of AIRFLOW_HOME).
export UI_TEST_SCREENSHOTS=${UI_TEST_SCREENSHOTS:-$PWD/orchestrate/airflow/ui-test}
PIPELINE_UI_TEST=1 exec .venv/bin/pytest -q tests/ui "$@"
