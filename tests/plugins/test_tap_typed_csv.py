"""tap-typed-csv as Meltano runs it: a real process, a config file, CSV files on disk.

Every test writes its own small CSV (and, where needed, schema) under tmp_path, runs
the installed executable there (relative paths resolve against the working
directory, as under Meltano), and reads the Singer messages from stdout.
"""

from __future__ import annotations

import decimal
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ORDER_DETAILS_SCHEMA = PROJECT_ROOT / "extract" / "order_details.schema.json"
HEADER = "order_id,product_id,unit_price,quantity,discount"

# Every type the tap supports, nullable and not, plus string formats.
MIXED_SCHEMA = {
    "type": "object",
    "required": ["id", "price"],
    "properties": {
        "id": {"type": "integer", "x-sql-datatype": "bigint"},
        "price": {"type": ["number", "null"], "x-sql-datatype": "numeric(10,3)"},
        "active": {"type": ["boolean", "null"]},
        "name": {"type": ["string", "null"], "x-sql-datatype": "text"},
        "born": {"type": ["string", "null"], "format": "date"},
        "seen": {"type": ["string", "null"], "format": "date-time"},
    },
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def messages(self, kind: str) -> list[dict[str, Any]]:
        """The Singer messages of one type, numbers parsed exactly."""
        parsed = [json.loads(line, parse_float=decimal.Decimal) for line in self.stdout.splitlines() if line.strip()]
        return [message for message in parsed if message["type"] == kind]

    def records(self) -> list[dict[str, Any]]:
        return [message["record"] for message in self.messages("RECORD")]

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "| ERROR" in line]


def run_tap(
    tap: Path,
    cwd: Path,
    csv_text: str | None,
    *,
    schema: dict[str, Any] | Path | None = ORDER_DETAILS_SCHEMA,
    key_properties: list[str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> Run:
    """Write data.csv, schema.json and config.json in ``cwd`` and run the tap there.

    ``csv_text`` None leaves data.csv absent; ``schema`` None leaves schema.json absent.
    """
    if csv_text is not None:
        (cwd / "data.csv").write_text(csv_text, encoding="utf-8", newline="")
    if isinstance(schema, Path):
        shutil.copy(schema, cwd / "schema.json")
    elif schema is not None:
        (cwd / "schema.json").write_text(json.dumps(schema), encoding="utf-8")
    config = {
        "files": [
            {
                "stream": "order_details",
                "path": "data.csv",
                "schema": "schema.json",
                "key_properties": ["order_id", "product_id"] if key_properties is None else key_properties,
            }
        ]
    }
    (cwd / "config.json").write_text(json.dumps(config), encoding="utf-8")
    done = subprocess.run(
        [str(tap), "--config", "config.json", *extra_args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def assert_fails_with(run: Run, message: str) -> None:
    """Non-zero exit, no records after the bad row, and exactly one error line: ``message``."""
    assert run.returncode != 0, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    matching = [line for line in run.stderr.splitlines() if line.endswith(message)]
    assert len(matching) == 1, f"expected one stderr line ending {message!r}:\n{run.stderr}"


def test_schema_message_passes_schema_and_keys_through(tap_typed_csv: Path, tmp_path: Path) -> None:
    run = run_tap(tap_typed_csv, tmp_path, f"{HEADER}\n10248,11,14,12,0\n")

    assert run.returncode == 0, run.stderr
    [schema_message] = run.messages("SCHEMA")
    assert schema_message["stream"] == "order_details"
    assert schema_message["key_properties"] == ["order_id", "product_id"]
    declared = json.loads(ORDER_DETAILS_SCHEMA.read_text())
    assert schema_message["schema"] == declared
    assert schema_message["schema"]["properties"]["unit_price"]["x-sql-datatype"] == "real"


def test_records_are_typed_exact_and_in_file_order(tap_typed_csv: Path, tmp_path: Path) -> None:
    csv_text = f"{HEADER}\n10248,42,9.8,10,0\n10248,11,14.000,12,0.05\n10249,14,-18.6,9,1e-2\n"
    run = run_tap(tap_typed_csv, tmp_path, csv_text)

    assert run.returncode == 0, run.stderr
    assert run.records() == [
        {"order_id": 10248, "product_id": 42, "unit_price": decimal.Decimal("9.8"), "quantity": 10, "discount": 0},
        {
            "order_id": 10248,
            "product_id": 11,
            "unit_price": decimal.Decimal("14.000"),
            "quantity": 12,
            "discount": decimal.Decimal("0.05"),
        },
        {
            "order_id": 10249,
            "product_id": 14,
            "unit_price": decimal.Decimal("-18.6"),
            "quantity": 9,
            "discount": decimal.Decimal("0.01"),
        },
    ]
    # Integers are JSON integers, decimals keep their exact text (no float rounding).
    first = next(line for line in run.stdout.splitlines() if '"RECORD"' in line)
    assert '"order_id":10248,' in first
    assert '"unit_price":9.8,' in first
    assert '"unit_price":14.000,' in run.stdout


def test_records_have_no_metadata_columns(tap_typed_csv: Path, tmp_path: Path) -> None:
    run = run_tap(tap_typed_csv, tmp_path, f"{HEADER}\n10248,11,14,12,0\n")

    assert run.returncode == 0, run.stderr
    [record] = run.records()
    assert list(record) == ["order_id", "product_id", "unit_price", "quantity", "discount"]


def test_header_order_does_not_matter(tap_typed_csv: Path, tmp_path: Path) -> None:
    csv_text = "discount,quantity,unit_price,product_id,order_id\n0.1,5,2.5,7,10250\n"
    run = run_tap(tap_typed_csv, tmp_path, csv_text)

    assert run.returncode == 0, run.stderr
    assert run.records() == [
        {
            "order_id": 10250,
            "product_id": 7,
            "unit_price": decimal.Decimal("2.5"),
            "quantity": 5,
            "discount": decimal.Decimal("0.1"),
        }
    ]


def test_types_nulls_and_string_formats(tap_typed_csv: Path, tmp_path: Path) -> None:
    csv_text = (
        "id,price,active,name,born,seen\n"
        "1,0,true,Ann,1990-02-28,2024-01-02T03:04:05+00:00\n"
        "2,,,,,\n"
        '3,-0.5,F,"Smith, ""Bob""",2000-01-01,2024-01-02 03:04:05\n'
        "4,12,1,0,1999-12-31,2024-01-02T03:04:05.123456\n"
        "5,7,0,x,2020-02-29,2024-01-02\n"
    )
    run = run_tap(tap_typed_csv, tmp_path, csv_text, schema=MIXED_SCHEMA, key_properties=["id"])

    assert run.returncode == 0, run.stderr
    records = run.records()
    assert records[0] == {
        "id": 1,
        "price": 0,
        "active": True,
        "name": "Ann",
        "born": "1990-02-28",
        "seen": "2024-01-02T03:04:05+00:00",
    }
    # An empty field is NULL; "0" is a value, not NULL.
    assert records[1] == {"id": 2, "price": None, "active": None, "name": None, "born": None, "seen": None}
    assert records[2]["active"] is False
    assert records[2]["name"] == 'Smith, "Bob"'
    assert records[2]["price"] == decimal.Decimal("-0.5")
    assert records[2]["seen"] == "2024-01-02 03:04:05"
    assert records[3]["active"] is True
    assert records[3]["name"] == "0"
    assert records[4]["active"] is False
    assert [record["id"] for record in records] == [1, 2, 3, 4, 5]
    # JSON null, not an empty string or a missing key.
    assert '"price":null' in run.stdout


def test_discover_lists_the_stream_with_its_schema(tap_typed_csv: Path, tmp_path: Path) -> None:
    # No CSV file: discovery needs only the schema.
    run = run_tap(tap_typed_csv, tmp_path, None, extra_args=("--discover",))

    assert run.returncode == 0, run.stderr
    catalog = json.loads(run.stdout)
    [entry] = catalog["streams"]
    assert entry["tap_stream_id"] == "order_details"
    assert entry["key_properties"] == ["order_id", "product_id"]
    assert entry["schema"]["properties"]["quantity"] == {"type": "integer", "x-sql-datatype": "smallint"}
    assert entry["schema"]["properties"]["unit_price"]["x-sql-datatype"] == "real"


BAD_ORDER_DETAILS = [
    pytest.param(
        f"{HEADER}\n10248,11,14,12,0\n10248,42,9.8,10\n",
        "data.csv line 3: 4 fields, expected 5",
        id="ragged-row",
    ),
    pytest.param(
        f"{HEADER}\n10248,11,14,12,0\n10248,42,9.8,10,0\n10249,14,18.6,abc,0\n",
        "data.csv line 4: column 'quantity': 'abc' is not an integer",
        id="non-numeric-quantity",
    ),
    pytest.param(
        f"{HEADER}\n10248,11,14,12.5,0\n",
        "data.csv line 2: column 'quantity': '12.5' is not an integer",
        id="fractional-integer",
    ),
    pytest.param(
        f"{HEADER}\n10248,11,NaN,12,0\n",
        "data.csv line 2: column 'unit_price': 'NaN' is not a number",
        id="nan-number",
    ),
    pytest.param(
        "order_id,product_id,unit_price,quantity\n10248,11,14,12\n",
        "data.csv: header is missing column 'discount'",
        id="missing-column",
    ),
    pytest.param(
        f"{HEADER},note\n10248,11,14,12,0,x\n",
        "data.csv: header has unexpected column 'note' (not in the schema)",
        id="extra-column",
    ),
    pytest.param(
        f"{HEADER}\n10248,11,14,12,0\n10248,42,,10,0\n",
        "data.csv line 3: column 'unit_price': empty (NULL) but the schema does not allow null",
        id="null-in-non-nullable",
    ),
    pytest.param("", "data.csv: empty file, expected a header line", id="empty-file"),
]


@pytest.mark.parametrize(("csv_text", "message"), BAD_ORDER_DETAILS)
def test_bad_input_fails_with_one_line(tap_typed_csv: Path, tmp_path: Path, csv_text: str, message: str) -> None:
    run = run_tap(tap_typed_csv, tmp_path, csv_text)

    assert_fails_with(run, message)


def test_rows_before_a_bad_row_are_emitted_and_none_after(tap_typed_csv: Path, tmp_path: Path) -> None:
    csv_text = f"{HEADER}\n10248,11,14,12,0\n10248,42,9.8,oops,0\n10249,14,18.6,9,0\n"
    run = run_tap(tap_typed_csv, tmp_path, csv_text)

    assert run.returncode != 0
    assert [record["product_id"] for record in run.records()] == [11]


BAD_MIXED = [
    pytest.param("1,2,yes,a,2020-01-01,2020-01-01T00:00:00", "line 2: column 'active': 'yes' is not a boolean"),
    pytest.param("1,2,t,a,2020-02-30,2020-01-01T00:00:00", "line 2: column 'born': '2020-02-30' is not a date"),
    pytest.param("1,2,t,a,2020-01-01,yesterday", "line 2: column 'seen': 'yesterday' is not an ISO date-time"),
    pytest.param(
        ",2,t,a,2020-01-01,2020-01-01", "line 2: column 'id': empty (NULL) but the schema does not allow null"
    ),
]


@pytest.mark.parametrize(("row", "message"), BAD_MIXED)
def test_bad_typed_values_fail(tap_typed_csv: Path, tmp_path: Path, row: str, message: str) -> None:
    csv_text = f"id,price,active,name,born,seen\n{row}\n"
    run = run_tap(tap_typed_csv, tmp_path, csv_text, schema=MIXED_SCHEMA, key_properties=["id"])

    assert run.returncode != 0
    [error] = [line for line in run.stderr.splitlines() if "data.csv line" in line]
    assert f"data.csv {message}" in error


def test_missing_csv_file_names_the_setting(tap_typed_csv: Path, tmp_path: Path) -> None:
    run = run_tap(tap_typed_csv, tmp_path, None)

    assert_fails_with(run, "data.csv: no such file (setting files[0].path)")
    assert run.records() == []


def test_missing_schema_file_names_the_setting(tap_typed_csv: Path, tmp_path: Path) -> None:
    run = run_tap(tap_typed_csv, tmp_path, f"{HEADER}\n10248,11,14,12,0\n", schema=None)

    assert_fails_with(run, "schema.json: no such file (setting files[0].schema)")


def test_invalid_schema_file_names_the_setting(tap_typed_csv: Path, tmp_path: Path) -> None:
    (tmp_path / "schema.json").write_text('{"properties": {', encoding="utf-8")
    run = run_tap(tap_typed_csv, tmp_path, f"{HEADER}\n10248,11,14,12,0\n", schema=None)

    assert_fails_with(
        run,
        "schema.json: not valid JSON: Expecting property name enclosed in double quotes "
        "at line 1 column 17 (setting files[0].schema)",
    )


def test_key_property_not_in_schema_fails(tap_typed_csv: Path, tmp_path: Path) -> None:
    run = run_tap(tap_typed_csv, tmp_path, f"{HEADER}\n10248,11,14,12,0\n", key_properties=["order_no"])

    assert_fails_with(run, "setting files[0].key_properties: 'order_no' is not a property of schema.json")


def test_line_numbers_count_physical_lines(tap_typed_csv: Path, tmp_path: Path) -> None:
    # Row 2 spans lines 3-4 (a quoted newline), so the bad row is on line 5, as an editor shows it.
    csv_text = 'id,price,active,name,born,seen\n1,1,t,a,,\n2,1,t,"two\nlines",,\n3,1,maybe,c,,\n'
    run = run_tap(tap_typed_csv, tmp_path, csv_text, schema=MIXED_SCHEMA, key_properties=["id"])

    assert_fails_with(run, "data.csv line 5: column 'active': 'maybe' is not a boolean (true/false/t/f/1/0)")
    assert [record["name"] for record in run.records()] == ["a", "two\nlines"]


def test_value_with_newline_is_shown_on_one_line(tap_typed_csv: Path, tmp_path: Path) -> None:
    csv_text = f'{HEADER}\n10248,11,14,12,"0\n.5"\n'
    run = run_tap(tap_typed_csv, tmp_path, csv_text)

    assert_fails_with(run, "data.csv line 2: column 'discount': '0\\n.5' is not a number")


def test_invalid_utf8_names_its_line(tap_typed_csv: Path, tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_bytes(b"id,price,active,name,born,seen\n1,1,t,ok,,\n2,1,t,caf\xe9,,\n")
    run = run_tap(tap_typed_csv, tmp_path, None, schema=MIXED_SCHEMA, key_properties=["id"])

    assert_fails_with(run, "data.csv line 3: not valid UTF-8 (invalid continuation byte at byte 10 of the line)")


def test_base_dir_resolves_relative_paths_from_any_working_directory(tap_typed_csv: Path, tmp_path: Path) -> None:
    # As under `meltano run` from a subfolder: the working directory is not where the files are.
    project = tmp_path / "project"
    (project / "sources").mkdir(parents=True)
    (project / "sources" / "data.csv").write_text(f"{HEADER}\n10248,11,14,12,0\n", encoding="utf-8")
    shutil.copy(ORDER_DETAILS_SCHEMA, project / "schema.json")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = {
        "base_dir": str(project),
        "files": [{"stream": "order_details", "path": "sources/data.csv", "schema": "schema.json"}],
    }
    (elsewhere / "config.json").write_text(json.dumps(config), encoding="utf-8")

    done = subprocess.run(
        [str(tap_typed_csv), "--config", "config.json"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    run = Run(done.returncode, done.stdout, done.stderr)

    assert run.returncode == 0, run.stderr
    assert [record["product_id"] for record in run.records()] == [11]
    [schema_message] = run.messages("SCHEMA")
    assert schema_message["key_properties"] == []
