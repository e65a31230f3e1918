"""Set-up step: put the pinned source files under $DATA_DIR/sources (see pipeline.sources)."""

import os
import sys
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.sources import obtain_sources


def main() -> int:
    """Obtain the files from $NORTHWIND_DATA_DIR when set, else from upstream."""
    local = os.environ.get("NORTHWIND_DATA_DIR")
    destination = Path(os.environ.get("DATA_DIR") or "data") / "sources"
    try:
        for path in obtain_sources(destination, Path(local) if local else None):
            print(f"source file ready: {path}")
    except PipelineError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
