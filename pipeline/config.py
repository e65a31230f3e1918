"""The project's configuration as the tools outside Meltano read it.

Meltano reads ``.env`` itself; the test suite and the benchmark, which start Meltano
and talk to the databases directly, read the same file the same way: ``.env`` (else
``.env.example``), with the process environment winning, as with Meltano and
docker compose.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_env(root: Path) -> dict[str, str]:
    """The variables of ``root/.env`` (else ``.env.example``), overridden by the process environment."""
    path = root / ".env"
    if not path.is_file():
        path = root / ".env.example"
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return {**values, **os.environ}
