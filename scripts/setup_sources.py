"""Set-up step: the pinned source files under $DATA_DIR/sources, then both databases.

The files come from $NORTHWIND_DATA_DIR when set, else from upstream (see
pipeline.sources). The databases are created if missing, and the source database
is seeded from northwind.sql if it has no table yet.
"""

import os
import sys
from pathlib import Path

from pipeline.databases import ANALYTICS, SOURCE, ensure_database, seed_if_empty
from pipeline.errors import PipelineError
from pipeline.sources import obtain_sources


def setup_sources() -> None:
    """Obtain the files, create the databases, seed the source."""
    local = os.environ.get("NORTHWIND_DATA_DIR")
    destination = Path(os.environ.get("DATA_DIR") or "data") / "sources"
    for path in obtain_sources(destination, Path(local) if local else None):
        print(f"source file ready: {path}")
    for prefix in (SOURCE, ANALYTICS):
        created = ensure_database(prefix)
        print(f"database {os.environ[f'{prefix}_DATABASE']}: {'created' if created else 'exists'}")
    if seed_if_empty(SOURCE, destination / "northwind.sql"):
        print(f"source database seeded from {destination / 'northwind.sql'}")


if __name__ == "__main__":
    try:
        setup_sources()
    except PipelineError as exc:
        sys.exit(f"setup failed: {exc}")
