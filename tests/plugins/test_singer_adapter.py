"""pipeline/adapters/singer.py against the singer-sdk each plugin has installed.

The adapter holds the singer-sdk details that have no public API; these checks
(singer_adapter_checks.py, run by each plugin's interpreter) fail when an upgrade
changes what the plugins rely on: the BATCH hand-over of a ``csv`` file with its
manifest entry as written, the selection of a schema that keeps our keys, and date
values kept as the tap's text.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.plugins.conftest import installed_plugin_executable

CHECKS = Path(__file__).with_name("singer_adapter_checks.py")
# Every plugin that imports pipeline.adapters.singer, as (plugin type, plugin).
PLUGINS = [
    ("extractors", "tap-postgres"),
    ("extractors", "tap-order-details"),
    ("extractors", "tap-lfs"),
    ("loaders", "target-lfs"),
    ("loaders", "target-analytics"),
]


@pytest.mark.parametrize(("plugin_type", "plugin"), PLUGINS, ids=[plugin for _, plugin in PLUGINS])
def test_the_installed_singer_sdk_behaves_as_the_adapter_says(plugin_type: str, plugin: str) -> None:
    python = installed_plugin_executable(plugin_type, plugin, "python")
    result = subprocess.run([str(python), str(CHECKS)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"failures": []}
