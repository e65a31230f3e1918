"""The peers' virtualenvs: created on first use under ``.bench/peers/<name>``, pinned, from PyPI only.

The peers are what the bench compares with, never dependencies of the project, so
they live in a folder of the bench's own (git-ignored), one venv per peer: the stock
MeltanoLabs plugins pin different ``psycopg2-binary`` versions and cannot share one.
:data:`PINS` is the one home of their direct versions; ``constraints/peer-<name>.txt``
(``scripts/lock.sh``) locks everything else, as for the project's own venvs. A venv
is (re)built when its recorded pins differ from the table's, so a pin change takes
effect at the next run; an install that fails stops the bench with one line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.memory import PROJECT_ROOT

PEERS_DIR = PROJECT_ROOT / ".bench" / "peers"
# The peers' direct pins, by venv name. dlt reads Postgres through SQLAlchemy into pyarrow (its fast path).
PINS: dict[str, tuple[str, ...]] = {
    "sling": ("sling-linux-amd64==1.4.11",),
    "dlt": ("dlt[postgres,sql_database]==1.31.0", "pyarrow==26.0.1"),
    "stock-tap-postgres": ("meltanolabs-tap-postgres==0.10.0",),
    "stock-target-csv": ("meltanolabs-target-csv==0.5.0",),
    "stock-target-postgres": ("meltanolabs-target-postgres==0.8.1",),
}
PINS_RECORD = "bench-pins.txt"  # inside each venv: the pins it was built with


def constraints_file(name: str) -> Path:
    """The lock of a peer's venv (written by scripts/lock.sh)."""
    return PROJECT_ROOT / "constraints" / f"peer-{name}.txt"


def _uv() -> str:
    from uv import find_uv_bin  # the project's own uv (constraints/project.txt), as scripts/lock.sh uses it

    return find_uv_bin()


def _fail(name: str, what: str, result: subprocess.CompletedProcess[str]) -> None:
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    cause = lines[-1] if lines else f"exit {result.returncode}"
    sys.exit(f"bench: could not {what} peer {name} ({' '.join(PINS[name])}) in {PEERS_DIR / name}: {cause}")


def peer_venv(name: str) -> Path:
    """The venv of peer ``name``, built first if missing or built with other pins; exits with one line on failure."""
    venv = PEERS_DIR / name
    wanted = "\n".join(PINS[name]) + "\n"
    record = venv / PINS_RECORD
    if record.is_file() and record.read_text() == wanted and (venv / "bin" / "python").exists():
        return venv
    print(f"bench: installing peer {name} ({', '.join(PINS[name])}) into {venv} ...", flush=True)
    made = subprocess.run(
        [_uv(), "venv", "--quiet", "--clear", "--python", sys.executable, str(venv)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        _fail(name, "create the venv of", made)
    lock = constraints_file(name)
    command = [_uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *PINS[name]]
    installed = subprocess.run(
        [*command, *(["--constraint", str(lock)] if lock.is_file() else [])],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        _fail(name, "install", installed)
    record.write_text(wanted)
    return venv
