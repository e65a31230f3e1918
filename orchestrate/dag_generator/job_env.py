"""The environment a job task gives ``meltano run``: the project's ``.env`` as it is now.

Airflow's processes keep the environment they started with. ``make airflow`` starts
them through ``meltano invoke``, which puts the values of ``.env`` into it, so an edit
of ``.env`` would not reach a task until Airflow restarts. ``scripts/airflow.sh``
therefore lists the keys that came from ``.env`` in ``PIPELINE_DOTENV_KEYS``; a task
drops those from its environment and reads ``.env`` afresh, so an edited value and a
deleted key both reach the next run. Every other variable set explicitly in the
environment (a test's, a container's) still wins over ``.env``, as in Meltano.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

DOTENV_KEYS_ENV = "PIPELINE_DOTENV_KEYS"


def job_environment(root: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the keys Airflow took from ``.env`` at start, over ``root/.env`` read now."""
    dotenv = {k: v for k, v in dotenv_values(root / ".env").items() if v is not None}
    from_dotenv_at_start = {k for k in environ.get(DOTENV_KEYS_ENV, "").split(",") if k}
    explicit = {k: v for k, v in environ.items() if k not in from_dotenv_at_start}
    return {**dotenv, **explicit}
