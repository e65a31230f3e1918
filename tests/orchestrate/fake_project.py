"""A fake Meltano project for Airflow's side: its DAGs are real, its `meltano` only records and fails on demand."""

from __future__ import annotations

import textwrap
from pathlib import Path

# A stand-in for `.venv/bin/meltano` in fake projects, so Airflow's side is tested in seconds.
# It appends "<PIPELINE_DATE> <FAKE_SETTING>[ forced]" to out/<job>-<day> (" forced" with
# PIPELINE_FORCE_OLD_DAY=1) and, by the job's name:
#   fail*   exits 3 without recording why (a crash)
#   bad*    records a permanent failure in PIPELINE_FAILURE_FILE, exits 1
#   flaky*  records a transient failure on its first attempt of a day, succeeds on the next
#   slow*   takes 2 seconds
#   hang*   writes its pid to out/<job>.pid and never ends (until stopped)
# A successful job writes a receipt listing two tables (alpha, beta) under DATA_DIR/_runs.
FAKE_MELTANO = textwrap.dedent(
    """\
    #!/bin/sh
    echo "fake meltano $* PIPELINE_DATE=$PIPELINE_DATE"
    out="$PWD/out/$2-${PIPELINE_DATE:-UNDATED}"
    mkdir -p "$PWD/out" && echo "$PIPELINE_DATE ${FAKE_SETTING:-}${PIPELINE_FORCE_OLD_DAY:+ forced}" >> "$out"
    record() {
      printf '{"component": "fake-%s", "transient": %s, "message": "%s"}\\n' "$2" "$1" "$3" >> "$PIPELINE_FAILURE_FILE"
    }
    case "$2" in
      fail*) exit 3;;
      bad*) record false "$2" "bad input in fake.csv line 3: 2 fields, expected 3"; exit 1;;
      flaky*) if [ "$(wc -l < "$out")" -lt 2 ]; then record true "$2" "database at 127.0.0.1:1 is down"; exit 1; fi;;
      slow*) sleep 2;;
      hang*) echo $$ > "$PWD/out/$2.pid"; sleep 3600;;
    esac
    receipts="${DATA_DIR:-data}/_runs/$2"
    mkdir -p "$receipts" && echo '{"tables": {"alpha": {}, "beta": {}}}' > "$receipts/$PIPELINE_DATE.json"
    """
)

# Step 1 (a, b), step 2 (combine), a step 1 that fails for good and the step 2 that waits
# for it, and a job that succeeds on its second attempt.
FAKE = """\
version: 1
jobs:
  - name: extract-a
    annotations:
      airflow:
        assets:
          - uri: lfs://a/{folder}
            tables_from: extract-a
    tasks: [tap-a target-a]
  - name: extract-b
    annotations:
      airflow:
        assets: [lfs://b/all]
    tasks: [tap-b target-b]
  - name: combine
    annotations:
      airflow:
        depends_on: [extract-a, extract-b]
        poke_interval_seconds: 3
        assets: [analytics://c/combined]
    tasks: [tap-c target-c]
  - name: bad-extract
    tasks: [tap-d target-d]
  - name: combine-bad
    annotations:
      airflow:
        depends_on: [extract-a, bad-extract]
        poke_interval_seconds: 3
    tasks: [tap-e target-e]
  - name: flaky-job
    annotations:
      airflow:
        retries: 1
        retry_delay_minutes: 0.05
    tasks: [tap-f target-f]
  - name: slow-extract
    tasks: [tap-g target-g]
  - name: hang-job
    annotations:
      airflow:
        retries: 0
    tasks: [tap-h target-h]
schedules:
  - {name: nightly-a, interval: "@daily", job: extract-a}
  - {name: nightly-b, interval: "@daily", job: extract-b}
  - {name: nightly-combine, interval: "@daily", job: combine}
  - {name: nightly-bad, interval: "@daily", job: bad-extract}
  - {name: nightly-combine-bad, interval: "@daily", job: combine-bad}
  - {name: nightly-flaky, interval: "@daily", job: flaky-job}
  - {name: nightly-slow, interval: "@daily", job: slow-extract}
  - {name: by-hand-hang, interval: "@manual", job: hang-job}
"""
DAG_IDS = [
    "nightly-a",
    "nightly-b",
    "nightly-combine",
    "nightly-bad",
    "nightly-combine-bad",
    "nightly-flaky",
    "nightly-slow",
    "by-hand-hang",
]


def write_fake_project(root: Path, meltano_yml: str, dotenv: str | None = None) -> Path:
    """Write a project at ``root`` with this meltano.yml, the fake meltano, and a .env when given."""
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / "meltano.yml").write_text(meltano_yml, encoding="utf-8")
    if dotenv is not None:
        (root / ".env").write_text(dotenv, encoding="utf-8")
    fake = root / ".venv" / "bin" / "meltano"
    fake.write_text(FAKE_MELTANO, encoding="utf-8")
    fake.chmod(0o755)
    return root
