"""The project's configuration as the tools outside Meltano read it: one reader of ``.env``.

Meltano reads ``.env`` itself, and hands all of it to every plugin of a run. So the
administrator's settings (``POSTGRES_ADMIN_*``), which only the set-up and the tests
need, live apart in ``.env.admin``: nothing else reads that file. Everything outside
Meltano that needs the configuration (the set-up, the test suite, the benchmark, the
Airflow login) reads it here, with python-dotenv (the same parser as the Airflow
tasks, ``orchestrate/dag_generator/job_env.py``), and the process environment wins,
as with Meltano and docker compose. The folder of the source files is worked out
here too, from ``DATA_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from pipeline.core.store import scheme_of

# The administrator's settings: read by the set-up, the tests and the benchmark only.
ADMIN_FILE = ".env.admin"


def dotenv_file(path: Path | str) -> dict[str, str]:
    """The ``KEY=value`` settings of one .env file (none when it is missing)."""
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def _file_or_example(root: Path, name: str) -> Path:
    """``root/name``, else its committed ``.example`` (a checkout that has not run ``make setup``)."""
    path = root / name
    return path if path.is_file() else root / f"{name}.example"


def project_env(root: Path, with_admin: bool = False) -> dict[str, str]:
    """The variables of ``root/.env`` (and of ``.env.admin`` when ``with_admin``), overridden by the environment.

    Each file falls back to its ``.example`` when missing.
    """
    admin = dotenv_file(_file_or_example(root, ADMIN_FILE)) if with_admin else {}
    return {**dotenv_file(_file_or_example(root, ".env")), **admin, **os.environ}


def sources_dir(root: Path, environ: Mapping[str, str]) -> Path:
    """Where set-up puts the upstream source files: ``$DATA_DIR/sources``, a relative ``DATA_DIR`` under ``root``.

    With ``DATA_DIR`` in an object store they stay on local disk, in ``data/sources``:
    they are the set-up's inputs (the seed of the source database, the default
    ``ORDER_DETAILS_CSV``), not day folders.
    """
    data_dir = environ.get("DATA_DIR") or "data"
    return root / ("data" if scheme_of(data_dir) else data_dir) / "sources"
