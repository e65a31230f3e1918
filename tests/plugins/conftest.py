"""Fixtures for the in-repo Singer plugins, run as real processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tap_typed_csv() -> Path:
    """The tap-typed-csv executable that `meltano install` put in the plugin's venv.

    TAP_TYPED_CSV_BIN overrides it (e.g. a development venv).
    """
    override = os.environ.get("TAP_TYPED_CSV_BIN")
    executable = (
        Path(override)
        if override
        else PROJECT_ROOT / ".meltano" / "extractors" / "tap-order-details" / "venv" / "bin" / "tap-typed-csv"
    )
    if not executable.is_file():
        pytest.fail(f"{executable} is missing: run make setup (it runs meltano install)")
    return executable
