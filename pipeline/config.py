"""The project's configuration as the tools outside Meltano read it: one reader of ``.env``.

Meltano reads ``.env`` itself. Everything else that needs it (the set-up, the test
suite, the benchmark, the Airflow login) reads it here, with python-dotenv (the same
parser as the Airflow tasks, ``orchestrate/dag_generator/job_env.py``), and the
process environment wins, as with Meltano and docker compose. The folder of the
source files is worked out here too, from ``DATA_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values


def dotenv_file(path: Path | str) -> dict[str, str]:
    """The ``KEY=value`` settings of one .env file (none when it is missing)."""
    return {key: value for key, value in dotenv_values(path).items() if value is not None}


def project_env(root: Path) -> dict[str, str]:
    """The variables of ``root/.env`` (else ``.env.example``), overridden by the process environment."""
    path = root / ".env"
    if not path.is_file():
        path = root / ".env.example"
    return {**dotenv_file(path), **os.environ}


def sources_dir(root: Path, environ: Mapping[str, str]) -> Path:
    """Where set-up puts the upstream source files: ``$DATA_DIR/sources``, a relative ``DATA_DIR`` under ``root``."""
    return root / (environ.get("DATA_DIR") or "data") / "sources"
