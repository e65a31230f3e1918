"""The DAG file Airflow parses: one DAG per Meltano schedule of this project.

All logic is in the package ``dag_generator`` (``orchestrate/dag_generator``, installed
into Airflow's virtualenv by the `airflow` plugin's pip_url); this file only finds the
project (``MELTANO_PROJECT_ROOT``, which ``meltano invoke`` sets, else two folders up)
and puts each DAG in the module's globals, where Airflow looks for them.
"""

from __future__ import annotations

import os
from pathlib import Path

from dag_generator.airflow_dags import build_dags
from dag_generator.job_env import job_environment
from dag_generator.plan import job_queues, job_timeout, plan_dags
from pipeline.project import read_project

PROJECT_ROOT = Path(os.environ.get("MELTANO_PROJECT_ROOT") or Path(__file__).resolve().parents[2])
# For tests and debugging only: e.g. 0, so that `airflow dags test` of a failing job
# ends at once instead of waiting out the retry delays.
_RETRIES = os.environ.get("MELTANO_DAGS_RETRIES")

# The jobs' timeout and Celery queues from the project's .env as it is now (as a task reads it),
# the environment winning.
_ENV = job_environment(PROJECT_ROOT, os.environ)
_PROJECT = read_project(PROJECT_ROOT)

globals().update(
    build_dags(
        plan_dags(
            _PROJECT,
            retries=int(_RETRIES) if _RETRIES else None,
            timeout=job_timeout(_ENV),
            queues=job_queues(_ENV, _PROJECT.jobs),
        )
    )
)
