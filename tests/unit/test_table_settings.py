"""tap-postgres-native's per-table setting ``tables``: exact names, validated whole, empty meaning none.

The module lives in the plugin's package, installed in the plugin's own virtualenv
only, so it is loaded here from its file (it needs nothing but ``pipeline.core.errors``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from pipeline.core.errors import PipelineError

PATH = Path(__file__).resolve().parents[2] / "extract/tap-postgres-native/tap_postgres_native/table_settings.py"
_spec = importlib.util.spec_from_file_location("table_settings_under_test", PATH)
assert _spec is not None
assert _spec.loader is not None
table_settings = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = table_settings
_spec.loader.exec_module(table_settings)
TableSettings = table_settings.TableSettings


def test_names_with_dots_and_hyphens_are_exact_and_unnamed_tables_are_selected() -> None:
    settings = TableSettings('{"public": {"a.b-c": {"selected": false}}, "sales.eu": {"x": {"selected": true}}}')

    assert settings.selected("public", "a.b-c") is False
    assert settings.selected("public", "a.b") is True
    assert settings.selected("public.a", "b-c") is True
    assert settings.selected("sales.eu", "x") is True
    assert settings.named() == {("public", "a.b-c"), ("sales.eu", "x")}


@pytest.mark.parametrize("value", [None, "", "  ", {}])
def test_an_empty_or_unset_setting_selects_every_table(value: object) -> None:
    assert TableSettings(value).selected("public", "orders") is True


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ('{"public": ', "not JSON"),
        ('["orders"]', "is not an object of schemas"),
        ('{"public": ["orders"]}', "schema 'public' maps to"),
        ('{"public": {"orders": false}}', "table 'public'.'orders' maps to false, not an object of options"),
        (
            '{"public": {"orders": {"selceted": false}}}',
            "unknown option 'selceted' (known: replication-key, replication-method, selected, table-key-properties)",
        ),
        ('{"public": {"orders": {"selected": "no"}}}', "option 'selected' is \"no\", not a bool"),
        (
            '{"public": {"orders": {"replication-method": "incremental"}}}',
            "table 'public'.'orders': replication-method 'incremental' is none of FULL_TABLE, INCREMENTAL, LOG_BASED",
        ),
        (
            '{"public": {"orders": {"replication-method": "INCREMENTAL"}}}',
            "table 'public'.'orders': replication-method INCREMENTAL needs a replication-key",
        ),
        (
            '{"public": {"orders": {"replication-method": "LOG_BASED", "table-key-properties": ["id"]}}}',
            "table-key-properties is for replication-method INCREMENTAL (LOG_BASED needs the source's primary key",
        ),
        (
            '{"p": {"t": {"replication-method": "INCREMENTAL", "replication-key": "v", "table-key-properties": []}}}',
            "table 'p'.'t': table-key-properties [] is not a list of column names",
        ),
        (
            '{"public": {"orders": {"replication-key": "order_id"}}}',
            "replication-key is for replication-method INCREMENTAL, not FULL_TABLE",
        ),
        ('{"public": {"orders": {"replication-key": 3}}}', "option 'replication-key' is 3, not a str"),
    ],
)
def test_a_malformed_setting_is_refused_in_one_line_naming_it(value: str, complaint: str) -> None:
    with pytest.raises(PipelineError) as refused:
        TableSettings(value)

    message = str(refused.value)
    assert message.startswith("tap-postgres setting tables (TAP_POSTGRES_TABLES): ")
    assert complaint in message
    assert "\n" not in message


def test_every_table_is_full_table_unless_its_options_say_otherwise() -> None:
    settings = TableSettings(
        {
            "public": {
                "orders": {"replication-method": "INCREMENTAL", "replication-key": "order_id"},
                "events": {"replication-method": "LOG_BASED"},
            }
        }
    )

    assert (settings.method("public", "orders"), settings.replication_key("public", "orders")) == (
        "INCREMENTAL",
        "order_id",
    )
    assert (settings.method("public", "events"), settings.replication_key("public", "events")) == ("LOG_BASED", None)
    assert (settings.method("public", "products"), settings.replication_key("public", "products")) == (
        "FULL_TABLE",
        None,
    )
