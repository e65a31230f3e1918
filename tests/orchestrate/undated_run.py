"""Run one DAG with no logical date, as a manual trigger without one does; print the outcome as JSON.

Run with Airflow's interpreter. `airflow dags test` always sets a logical date, so
this calls ``dag.test(logical_date=None)``. Usage: python undated_run.py DAGS_FOLDER DAG_ID
"""

from __future__ import annotations

import json
import sys


def main(dags_folder: str, dag_id: str) -> None:
    """Print {run_state, logical_date, tasks} of an undated test run of ``dag_id``."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=dags_folder).dags[dag_id]
    run = dag.test(logical_date=None)
    tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    print(json.dumps({"run_state": str(run.state), "logical_date": str(run.logical_date), "tasks": tasks}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
