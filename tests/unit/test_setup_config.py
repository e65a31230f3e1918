"""`make setup`'s configuration files (scripts/setup.sh config): secrets readable by their owner only.

``.env`` (every job's settings; ``meltano run`` hands all of it to every plugin) and
``.env.admin`` (the database administrator's, read by the set-up and the tests only)
are created 0600 from their examples, an existing one readable by others is made
0600, and an ``.env`` that still holds the administrator's settings is refused.
The step runs for real, in a copy of the files it needs.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pipeline.core.config import project_env
from tests.conftest import PROJECT_ROOT


def project_copy(tmp_path: Path) -> Path:
    """A folder with the set-up script and the two examples, as in a fresh clone."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(PROJECT_ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    for name in (".env.example", ".env.admin.example"):
        shutil.copy2(PROJECT_ROOT / name, tmp_path / name)
    return tmp_path


def setup_config(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(root / "scripts" / "setup.sh"), "config"], capture_output=True, text=True, timeout=60, check=False
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_set_up_creates_env_and_env_admin_readable_by_their_owner_only(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    result = setup_config(root)
    assert result.returncode == 0, result.stderr
    assert (mode(root / ".env"), mode(root / ".env.admin")) == (0o600, 0o600)
    assert (root / ".env").read_text() == (root / ".env.example").read_text()
    assert "POSTGRES_ADMIN_PASSWORD" in (root / ".env.admin").read_text()


def test_the_examples_keep_the_administrator_out_of_env() -> None:
    env_lines = [line for line in (PROJECT_ROOT / ".env.example").read_text().splitlines() if "=" in line]
    assert not [line for line in env_lines if line.lstrip("# ").startswith("POSTGRES_ADMIN_")]


def test_set_up_makes_an_existing_world_readable_env_private_and_says_so(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    (root / ".env").write_text("TAP_POSTGRES_PASSWORD=secret\n")
    (root / ".env").chmod(0o644)
    result = setup_config(root)
    assert result.returncode == 0, result.stderr
    assert mode(root / ".env") == 0o600
    assert (root / ".env").read_text() == "TAP_POSTGRES_PASSWORD=secret\n"
    assert "setup: .env was readable by others; now by its owner only (0600)" in result.stdout


def test_set_up_refuses_an_env_that_holds_the_administrators_password(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    (root / ".env").write_text("POSTGRES_ADMIN_USER=postgres\nPOSTGRES_ADMIN_PASSWORD=postgres\n")
    result = setup_config(root)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "setup: .env holds POSTGRES_ADMIN_* settings, which meltano run hands to every plugin: move those lines "
        "into .env.admin (see .env.admin.example), then run make setup again"
    ]
    assert not (root / ".env.admin").exists()


def test_only_a_reader_that_asks_for_it_gets_the_administrator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("POSTGRES_ADMIN_USER", "POSTGRES_ADMIN_PASSWORD", "TAP_POSTGRES_USER"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / ".env").write_text("TAP_POSTGRES_USER=reader\n")
    (tmp_path / ".env.admin").write_text("POSTGRES_ADMIN_USER=boss\nPOSTGRES_ADMIN_PASSWORD=s3cret\n")
    plain, with_admin = project_env(tmp_path), project_env(tmp_path, with_admin=True)
    assert plain["TAP_POSTGRES_USER"] == with_admin["TAP_POSTGRES_USER"] == "reader"
    assert "POSTGRES_ADMIN_PASSWORD" not in plain
    assert (with_admin["POSTGRES_ADMIN_USER"], with_admin["POSTGRES_ADMIN_PASSWORD"]) == ("boss", "s3cret")
