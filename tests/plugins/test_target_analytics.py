"""target-analytics, the in-repo extension of MeltanoLabs target-postgres, run for real.

It inherits target-postgres's settings and stream handling but none of its table
creation: a day's load must create only the project's schemas, with every name exact,
and a target-postgres setting it does not honour must be refused in one line rather
than silently ignored.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.analytics.days import JOBS, Analytics, Table, analytics, csv_table, write_day  # noqa: F401  (the fixture)
from tests.plugins.conftest import installed_plugin_executable

DAY = "2024-01-02"
# Split on "-" by target-postgres (schema "b", table "c"); kept whole here.
HYPHENATED = "a-b-c"
DOTTED = "Public.X"


@pytest.mark.integration
def test_a_load_creates_only_the_projects_schemas_with_exact_names(analytics: Analytics) -> None:  # noqa: F811
    table = Table(HYPHENATED, {"Id": "integer", "x.y": "text"}, "Id,x.y\n1,one\n", key=["Id"])
    write_day(analytics.data_dir, DAY, JOBS[0], [table])
    write_day(analytics.data_dir, DAY, JOBS[1], [csv_table(DOTTED, {"n": "smallint"}, "n\n7\n")])
    analytics.meltano_ok("tap-lfs", "target-analytics", day=DAY)

    with analytics.connect() as conn:
        schemas = [
            name
            for (name,) in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                "AND nspname NOT IN ('information_schema', 'public') ORDER BY 1"
            )
        ]
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' ORDER BY 1, 2"
        ).fetchall()
        columns = conn.execute(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname LIKE 'pipeline\\_%%' AND c.relname = %s AND a.attnum > 0 ORDER BY a.attnum",
            (HYPHENATED,),
        ).fetchall()
    assert len(schemas) == 3
    assert schemas[0] == "pipeline"
    assert all(name.startswith("pipeline_20240102_") for name in schemas[1:])
    assert {name for schema, name in tables if schema != "pipeline"} == {HYPHENATED, DOTTED}
    assert {schema for schema, _ in tables} == set(schemas)
    assert columns == [("pipeline_date",), ("Id",), ("x.y",)]


@pytest.mark.parametrize(
    ("setting", "value"),
    [("default_target_schema", "melty"), ("add_record_metadata", True), ("sqlalchemy_url", "postgresql://h/d")],
)
def test_a_target_postgres_setting_it_does_not_honour_is_refused_in_one_line(
    tmp_path: Path, setting: str, value: object
) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"host": "127.0.0.1", "user": "u", "database": "d", "pipeline_date": DAY, setting: value})
    )
    exe = installed_plugin_executable("loaders", "target-analytics", "target-analytics")
    result = subprocess.run([exe, "--config", config], input="", capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("target-analytics: ")]
    assert line.startswith(f"target-analytics: target-analytics setting {setting} is not supported (")
    assert line.endswith("): remove it from the loader's config")
    assert "Traceback" not in result.stderr
