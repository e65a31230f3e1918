"""Where one day's tasks ran, pinned by queue (tests/compose/test.sh, COMPOSE_TEST_DISTRIBUTED=1).

Usage: check_pinned.py TASK_INSTANCES_JSON RUN_ID DAG=HOST...
Every task instance of run RUN_ID of each DAG named ran on that DAG's HOST (the worker
serving its job's queue); test.sh names one worker for step 1's DAGs and the other for
step 2's, so this proves that the day's two steps ran on different workers. Prints each
job task (not the sensors) as "DAG TASK TRY" for the log check. Exits 1 otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: str, run_id: str, *pins: str) -> int:
    expected = dict(pin.split("=", 1) for pin in pins)
    ran = [
        t
        for t in json.loads(Path(path).read_text())["task_instances"]
        if t["dag_run_id"] == run_id and t["dag_id"] in expected
    ]
    problems = [f"{dag}: no task instance of {run_id}" for dag in expected if not any(t["dag_id"] == dag for t in ran)]
    problems += [
        f"{t['dag_id']}/{t['task_id']} ran on {t['hostname'] or 'no host'}, not {expected[t['dag_id']]}"
        for t in ran
        if t["hostname"] != expected[t["dag_id"]]
    ]
    for problem in problems:
        print(f"   {problem}", file=sys.stderr)
    if problems:
        return 1
    where = sorted({(t["dag_id"], t["hostname"]) for t in ran})
    print(f"   {run_id}: " + ", ".join(f"{dag} on {host}" for dag, host in where), file=sys.stderr)
    for t in ran:
        if not t["task_id"].startswith(("wait-for-", "start-")):
            print(t["dag_id"], t["task_id"], t["try_number"])
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
