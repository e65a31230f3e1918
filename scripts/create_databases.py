"""Set-up step: create the source and analytics databases if missing; seed the source."""

import os
import sys
from pathlib import Path

from pipeline.databases import ANALYTICS, SOURCE, ensure_database, seed_if_empty
from pipeline.errors import PipelineError


def main() -> int:
    """Create both databases and load northwind.sql into an empty source."""
    dump = Path(os.environ.get("DATA_DIR") or "data") / "sources" / "northwind.sql"
    try:
        for prefix in (SOURCE, ANALYTICS):
            created = ensure_database(prefix)
            print(f"database {os.environ[f'{prefix}_DATABASE']}: {'created' if created else 'exists'}")
        if seed_if_empty(SOURCE, dump):
            print(f"source seeded from {dump}")
    except PipelineError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
