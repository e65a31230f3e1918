"""docker-compose.yml's object-store-init (profile ``distributed``): the bucket, and the CSV source in it.

Usage: python docker/object_store_init.py LOCAL_CSV

The workers of that profile share no file system with the host that runs ``setup``:
their ``DATA_DIR`` and ``ORDER_DETAILS_CSV`` are ``s3://`` URLs in the compose
network's object store. This one-shot, run on every ``up`` after ``setup``, creates
the bucket of ``DATA_DIR`` when it is missing and puts ``LOCAL_CSV`` (the source
file that ``setup`` obtained and checked by sha256) at ``ORDER_DETAILS_CSV`` unless an
object with the same sha256 is already there. Idempotent; settings through
``pipeline.core.store`` as every job reads them (the ``AWS_*`` settings, never logged).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pipeline.core.errors import PipelineError, first_line
from pipeline.core.store import bucket_key, data_root, failure, is_object_store, open_path, sha256_of


def main(local_csv: str) -> int:
    """Create the bucket if missing, then upload the source CSV if it differs; 1 with one line on failure."""
    try:
        root = data_root(os.environ["DATA_DIR"])
        target = open_path(os.environ["ORDER_DETAILS_CSV"], "ORDER_DETAILS_CSV")
        if not (is_object_store(root) and is_object_store(target)):
            print("object-store-init: DATA_DIR and ORDER_DETAILS_CSV must both be s3:// URLs", file=sys.stderr)
            return 1
        bucket, _ = bucket_key(root)
        if not root.fs.exists(bucket):
            root.fs.mkdir(bucket)
            print(f"object-store-init: created bucket {bucket}")
        source = Path(local_csv)
        digest = sha256_of(source)
        if target.exists() and sha256_of(target) == digest:
            print(f"object-store-init: {target} is already the source file (sha256 {digest[:12]})")
        else:
            target.fs.put_file(str(source), target.path)
            print(f"object-store-init: put {source} at {target} (sha256 {digest[:12]})")
    except (OSError, KeyError, PipelineError) as exc:
        # The store's own one-line reason (a missing bucket, refused credentials, no answer) when it is one.
        print(f"object-store-init: {first_line(failure(exc) or exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
