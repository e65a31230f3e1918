#!/usr/bin/env python3
"""Write Airflow's simple-auth-manager passwords file from AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD.

Airflow 3.3's simple auth manager takes its users from ``simple_auth_manager_users``
but their passwords only from a JSON file, and it never changes a password already
in that file: a password changed in the environment would silently keep the old one.
So whoever starts the api-server (``scripts/airflow.sh``, the Docker entrypoint)
runs this first, at every start: it rewrites the file (temp file, then rename;
mode 0600) with exactly the admin user, and prints the value for
``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS`` (``<user>:admin``) on stdout.

The example's password ``admin`` is what anyone would try first: it still works (a
local Airflow on loopback), but every start says so on stderr. An empty one is
refused. (Docker replaces both by a generated password, docker/entrypoint.sh.)

Usage: airflow_auth.py PASSWORDS_FILE [DOTENV]
Values come from the environment; a missing one is then read from DOTENV (the
project's ``.env``) when given, read with python-dotenv as everywhere else
(``pipeline.core.config``, the tasks' ``job_env``): any Python with python-dotenv runs it,
the project's venv (``scripts/airflow.sh``, the Docker entrypoint) or Airflow's (tests).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

from dotenv import dotenv_values

SETTINGS = ("AIRFLOW_ADMIN_USER", "AIRFLOW_ADMIN_PASSWORD")
# The password of .env.example: warned about at every start.
DEFAULT_PASSWORD = "admin"
# The users setting is "name:role,name:role": a name must not contain either separator.
USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")


class AuthSetupError(Exception):
    """A setting is missing or unusable; the message names it and the fix."""


def admin_credentials(environ: dict[str, str], dotenv: Path | None) -> tuple[str, str]:
    """The admin's name and password: environment first, then the .env file."""
    fallback = {k: v for k, v in dotenv_values(dotenv).items() if v is not None} if dotenv else {}
    user, password = (environ.get(k) or fallback.get(k) or "" for k in SETTINGS)
    where = f"the environment or {dotenv}" if dotenv else "the environment"
    if not user or not password:
        missing = [k for k, v in zip(SETTINGS, (user, password), strict=True) if not v]
        raise AuthSetupError(f"{', '.join(missing)} not set in {where}: set it (see .env.example)")
    if not USER_NAME.match(user):
        raise AuthSetupError(f"AIRFLOW_ADMIN_USER={user!r}: use letters, digits and _.@- only")
    return user, password


def write_passwords_file(path: Path, user: str, password: str) -> None:
    """Replace the passwords file with exactly ``{user: password}`` (atomic, readable by the owner only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({user: password}, handle)
            handle.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str]) -> int:
    """Write the file, print the users setting; one line on stderr and exit 1 on bad settings."""
    if len(argv) not in (2, 3):
        print("usage: airflow_auth.py PASSWORDS_FILE [DOTENV]", file=sys.stderr)
        return 2
    try:
        user, password = admin_credentials(dict(os.environ), Path(argv[2]) if len(argv) == 3 else None)
        write_passwords_file(Path(argv[1]), user, password)
    except (AuthSetupError, OSError) as exc:
        print(f"airflow login: {exc}", file=sys.stderr)
        return 1
    if password == DEFAULT_PASSWORD:
        print(
            f"airflow login: WARNING: AIRFLOW_ADMIN_PASSWORD is the default {DEFAULT_PASSWORD!r}, which anyone "
            "who reaches the UI tries first: set another one in .env",
            file=sys.stderr,
        )
    print(f"{user}:admin")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
