"""Where the task instances ran (tests/compose/test.sh): only on the expected hosts.

Usage: check_hosts.py TASK_INSTANCES_JSON SCHEDULER_HOST WORKERS EXPECTED_HOST...
LocalExecutor (WORKERS 0): the scheduler ran every task. Celery: the workers ran
every task, never the scheduler, and each worker at least one. Exits 1 otherwise.
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path


def main(path: str, scheduler: str, workers: str, *expected: str) -> int:
    ran = [t for t in json.loads(Path(path).read_text())["task_instances"] if t["hostname"]]
    where = collections.Counter(t["hostname"] for t in ran)
    print(f"   task instances that ran: {len(ran)}; per host: {dict(where)}; scheduler {scheduler}")
    problems = [
        f"{t['dag_id']}/{t['task_id']} ({t['dag_run_id']}) ran on {t['hostname']}"
        for t in ran
        if t["hostname"] not in expected
    ]
    if int(workers):
        problems += [f"worker {host} ran no task" for host in expected if not where[host]]
    for problem in problems:
        print(f"   {problem}")
    if problems or not ran:
        return 1
    if int(workers):
        print(f"   every task ran on a Celery worker ({workers} workers, each ran at least one), none on the scheduler")
    else:
        print("   every task ran in the scheduler (LocalExecutor)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
