"""Set-up step: the pinned source files under $DATA_DIR/sources, then the databases.

Settings come from the environment, then from the project's ``.env`` and
``.env.admin`` when they exist (``make setup``; a container has neither:
docker-compose.yml sets the environment).

The files come from $NORTHWIND_DATA_DIR when set, else from upstream (see
pipeline.setup.source_files). The databases are created if missing, the source database is
seeded from northwind.sql if it has no table yet, and the jobs' roles are created
and granted (pipeline.setup.provision), all with the administrator's connection
(POSTGRES_ADMIN_*). The databases of Meltano, Airflow and Celery's results, when
their URLs are PostgreSQL ones (as in docker-compose.yml), are created too, each
owned by its URL's role (pipeline.setup.service_databases).
"""

import os
import sys
from pathlib import Path

from pipeline.core.config import ADMIN_FILE, dotenv_file, sources_dir
from pipeline.core.errors import PipelineError
from pipeline.setup.provision import provision
from pipeline.setup.service_databases import SERVICE_DATABASE_SETTINGS, ensure_service_database
from pipeline.setup.source_files import obtain_sources


def setup_sources() -> None:
    """Obtain the files, create the databases, seed the source, grant the roles."""
    for path in (Path(".env"), Path(ADMIN_FILE)):
        for key, value in dotenv_file(path).items():
            os.environ.setdefault(key, value)
    local = os.environ.get("NORTHWIND_DATA_DIR")
    destination = sources_dir(Path.cwd(), os.environ)
    for path in obtain_sources(destination, Path(local) if local else None):
        print(f"source file ready: {path}")
    for line in provision(destination / "northwind.sql"):
        print(line)
    for setting in SERVICE_DATABASE_SETTINGS:
        if done := ensure_service_database(setting):
            print(done)


if __name__ == "__main__":
    try:
        setup_sources()
    except PipelineError as exc:
        sys.exit(f"setup failed: {exc}")
