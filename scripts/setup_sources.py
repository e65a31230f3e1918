"""Set-up step: the pinned source files under $DATA_DIR/sources, then both databases.

Settings come from the environment, then from the project's ``.env`` when there is
one (``make setup``; a container has none: docker-compose.yml sets the environment).

The files come from $NORTHWIND_DATA_DIR when set, else from upstream (see
pipeline.sources). The databases are created if missing, the source database is
seeded from northwind.sql if it has no table yet, and the jobs' roles are created
and granted (pipeline.provision), all with the administrator's connection
(POSTGRES_ADMIN_*). When Meltano's system database is in Postgres
(MELTANO_DATABASE_URI=postgresql+psycopg://..., as in docker-compose.yml), its
database is created too.
"""

import os
import sys
from pathlib import Path

from pipeline.config import dotenv_file, sources_dir
from pipeline.databases import ensure_database_at
from pipeline.errors import PipelineError
from pipeline.provision import provision
from pipeline.sources import obtain_sources


def setup_sources() -> None:
    """Obtain the files, create the databases, seed the source, grant the roles."""
    for key, value in dotenv_file(Path(".env")).items():
        os.environ.setdefault(key, value)
    local = os.environ.get("NORTHWIND_DATA_DIR")
    destination = sources_dir(Path.cwd(), os.environ)
    for path in obtain_sources(destination, Path(local) if local else None):
        print(f"source file ready: {path}")
    for line in provision(destination / "northwind.sql"):
        print(line)
    meltano_db = os.environ.get("MELTANO_DATABASE_URI", "")
    if meltano_db.startswith("postgres"):
        created = ensure_database_at(meltano_db)
        print(f"Meltano's system database: {'created' if created else 'exists'} ({meltano_db.split('@')[-1]})")


if __name__ == "__main__":
    try:
        setup_sources()
    except PipelineError as exc:
        sys.exit(f"setup failed: {exc}")
