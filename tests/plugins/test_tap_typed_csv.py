"""tap-typed-csv as Meltano runs it: a real process, a config file, CSV files on disk.

Every test writes its own small CSV (and, where needed, schema) under tmp_path, runs
the installed executable there (relative paths resolve against the working
directory, as under Meltano), and reads the Singer messages from stdout.
"""

from __future__ import annotations

import csv
import decimal
import io
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pipeline.core.connections import SOURCE, conninfo

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ORDER_DETAILS_SCHEMA = PROJECT_ROOT / "extract" / "order_details.schema.json"
HEADER = "order_id,product_id,unit_price,quantity,discount"

# One column of each JSON type, nullable and not, and the date/time types.
MIXED_SCHEMA = {
    "type": "object",
    "required": ["id", "price"],
    "properties": {
        "id": {"type": "integer", "x-sql-datatype": "bigint"},
        "price": {"type": ["number", "null"], "x-sql-datatype": "numeric(10,3)"},
        "active": {"type": ["boolean", "null"], "x-sql-datatype": "boolean"},
        "name": {"type": ["string", "null"], "x-sql-datatype": "text"},
        "born": {"type": ["string", "null"], "format": "date", "x-sql-datatype": "date"},
        "seen": {"type": ["string", "null"], "x-sql-datatype": "timestamp"},
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


def run_tap(
    tap: Path,
    cwd: Path,
    csv_text: str | None,
    *,
    schema: dict[str, Any] | Path | None = ORDER_DETAILS_SCHEMA,
    key_properties: list[str] | None = None,
    extra_args: tuple[str, ...] = (),
    batch: bool = False,
    env: dict[str, str] | None = None,
) -> Run:
    """Write data.csv, schema.json and config.json in ``cwd`` and run the tap there.

    ``csv_text`` None leaves data.csv absent; ``schema`` None leaves schema.json absent;
    ``batch``: batch mode (as csv-to-lfs runs it), its day file under ``cwd/data``'s staging tree (``INCOMING``);
    ``env``: variables added to the environment.
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
        ],
        **(BATCH_SETTINGS if batch else {}),
    }
    (cwd / "config.json").write_text(json.dumps(config), encoding="utf-8")
    done = subprocess.run(
        [str(tap), "--config", "config.json", *extra_args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


# pipeline.days.handover's settings, as csv-to-lfs gives them; the day file is written under INCOMING.
BATCH_SETTINGS = {
    "data_dir": "data",
    "pipeline_date": "2024-01-02",
    "job": "csv-to-lfs",
    "folder_template": "csv/{date}",
}
INCOMING = Path("data/.staging/csv-to-lfs/2024-01-02/.incoming")


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
    # The declared schema, each column with its type's catalog identity added.
    for prop in declared["properties"].values():
        oid = {"smallint": 21, "real": 700}[prop["x-sql-datatype"]]
        prop.update({"x-sql-type-oid": oid, "x-sql-typmod": -1})
    assert schema_message["schema"] == declared


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
        "1,0,true,Ann,1990-02-28,2024-01-02T03:04:05\n"
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
        "seen": "2024-01-02T03:04:05",
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
    pytest.param(
        "1,2,t,a,2020-01-01,yesterday", "line 2: column 'seen': 'yesterday' is not a timestamp without offset"
    ),
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


# Declared SQL types: each one's catalog identity, format and range, checked against PostgreSQL itself.

# One column per supported type, declared as people write them (aliases, upper case).
TYPED_COLUMNS = {
    "row": ("integer", "integer"),
    "i2": ("int2", "integer"),
    "i4": ("integer", "integer"),
    "i8": ("BIGINT", "integer"),
    "r": ("real", "number"),
    "d": ("double precision", "number"),
    "n": ("numeric(5, 2)", "number"),
    "nu": ("decimal", "number"),
    "b": ("bool", "boolean"),
    "dt": ("date", "string"),
    "ts": ("timestamp(3)", "string"),
    "tz": ("timestamp with time zone", "string"),
    "t": ("text", "string"),
    "v": ("character varying(3)", "string"),
}
TYPED_SCHEMA = {
    "type": "object",
    "properties": {
        name: {"type": [json_type, "null"], "x-sql-datatype": declared}
        for name, (declared, json_type) in TYPED_COLUMNS.items()
    },
}
TYPED_HEADER = ",".join(TYPED_COLUMNS)

# Values at the edges of every type, all in the form the batch mode copies block-wise.
EDGES_CANONICAL = (
    "1,-32768,-2147483648,-9223372036854775808,-99999999999999999999999999999999999999,-0.5,-999.99,"
    "-123456789012345678901234567890.5,false,0001-01-01,0001-01-01 00:00,0001-01-01T00:00:00+15:59,a,a\n"
    "2,32767,2147483647,9223372036854775807,99999999999999999999999999999999999999,0.000001,999.99,0,true,"
    "9999-12-31,9999-12-31T23:59:59.999,9999-12-31 23:59:59.999999-15:59,x y,äöü\n"
    "3,,,,,,,,,,,,,\n"
    "4,0,0,0,0,0,0,0,false,2000-02-29,2000-02-29T12:00:00,2024-02-29 12:00:00Z,0,ab\n"
)
# Values at the edges in other accepted spellings, which take the exact, per-field path.
EDGES_OTHER = (
    "1,+007,-0,000000000000000000000000000042,1e-40,2.2250738585072014e-308,999.994,1e-30,T,2024-02-29,"
    '2000-02-29 12:00,2024-01-01 00:00Z,x,"a,b"\n'
    "2,-1,1,-1,-3.4e38,-1.7e308,-0.005,1e1000,0,1900-02-28,1900-02-28,1900-02-28 00:00:00+05,"
    '"  spaced, ""quoted""  ",ab \n'
    "3,0012,2147483647,-9223372036854775808,3.4E38,1.7E+308,-999.994,-1E-1000,f,2400-02-29,"
    '2024-02-29T12:34:56.123456789,2024-02-29T12:34:56-0330,tab\there,""""\n'
    "4,-0,+0,-00,-0,-0.0e5,-0,-0.000,FALSE,,,,,\n"
)


def typed_table(conn: psycopg.Connection, name: str, columns: dict[str, tuple[str, str]]) -> None:
    """A table with the declared types, as the test's oracle of what PostgreSQL makes of them."""
    # The declared types are this test's own constants, not input: composed as SQL text on purpose.
    definitions = [
        sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(declared)) for column, (declared, _) in columns.items()
    ]
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(name), sql.SQL(", ").join(definitions)))


def test_each_declared_type_carries_the_oid_typmod_and_name_postgresql_gives_it(
    tap_typed_csv: Path, tmp_path: Path, base_env: dict[str, str], throwaway_database
) -> None:
    run = run_tap(tap_typed_csv, tmp_path, f"{TYPED_HEADER}\n", schema=TYPED_SCHEMA, key_properties=["row"])

    assert run.returncode == 0, run.stderr
    [schema_message] = run.messages("SCHEMA")
    tap_says = {
        name: (prop["x-sql-type-oid"], prop["x-sql-typmod"], prop["x-sql-datatype"])
        for name, prop in schema_message["schema"]["properties"].items()
    }
    with psycopg.connect(
        conninfo(SOURCE, base_env, database=throwaway_database("typed_csv"), admin=True), autocommit=True
    ) as conn:
        typed_table(conn, "declared", TYPED_COLUMNS)
        postgres_says = {
            name: (oid, typmod, datatype)
            for name, oid, typmod, datatype in conn.execute(
                "SELECT attname, atttypid::int, atttypmod, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 'declared'::regclass AND attnum > 0"
            )
        }
    assert tap_says == postgres_says
    assert tap_says["v"] == (1043, 7, "character varying(3)")
    assert tap_says["n"] == (1700, (5 << 16 | 2) + 4, "numeric(5,2)")
    # Dates and timestamps travel as strings with their JSON Schema format.
    assert schema_message["schema"]["properties"]["tz"]["format"] == "date-time"
    assert schema_message["schema"]["properties"]["dt"]["format"] == "date"


@pytest.mark.parametrize("rows", [EDGES_CANONICAL, EDGES_OTHER], ids=["canonical", "other-spellings"])
def test_values_at_the_edges_of_each_type_load_as_postgresql_reads_them(
    tap_typed_csv: Path, tmp_path: Path, base_env: dict[str, str], throwaway_database, rows: str
) -> None:
    csv_text = f"{TYPED_HEADER}\n{rows}"
    records = run_tap(tap_typed_csv, tmp_path, csv_text, schema=TYPED_SCHEMA, key_properties=["row"])
    batched = run_tap(tap_typed_csv, tmp_path, csv_text, schema=TYPED_SCHEMA, key_properties=["row"], batch=True)

    assert records.returncode == 0, records.stderr
    assert batched.returncode == 0, batched.stderr
    assert len(records.records()) == rows.count("\n")
    [batch_file] = (tmp_path / INCOMING).glob("*/order_details.csv")
    source_rows = list(csv.reader(io.StringIO(rows)))
    with psycopg.connect(
        conninfo(SOURCE, base_env, database=throwaway_database("typed_csv"), admin=True), autocommit=True
    ) as conn:
        typed_table(conn, "loaded", TYPED_COLUMNS)
        with conn.cursor().copy("COPY loaded FROM STDIN (FORMAT csv, HEADER true)") as copy:
            copy.write(batch_file.read_bytes())
        for source_row in source_rows:
            for (column, (declared, _)), field in zip(TYPED_COLUMNS.items(), source_row, strict=True):
                loaded = conn.execute(
                    sql.SQL("SELECT {}::text FROM loaded WHERE row = %s").format(sql.Identifier(column)),
                    (int(source_row[0]),),
                ).fetchone()[0]
                # PostgreSQL's own reading of the source field (an empty field is NULL).
                expected = conn.execute(
                    sql.SQL("SELECT CAST(%s::text AS {})::text").format(sql.SQL(declared)), (field or None,)
                ).fetchone()[0]
                assert loaded == expected, f"row {source_row[0]} column {column}: {field!r}"


# column, field, the end of the error line, whether PostgreSQL refuses the value too (else the tap is stricter).
OUT_OF_RANGE = [
    pytest.param("i2", "40000", "'40000' is out of range for smallint (-32768 to 32767)", True, id="smallint-high"),
    pytest.param("i2", "-32769", "'-32769' is out of range for smallint (-32768 to 32767)", True, id="smallint-low"),
    pytest.param(
        "i4", "2147483648", "'2147483648' is out of range for integer (-2147483648 to 2147483647)", True, id="integer"
    ),
    pytest.param(
        "i8",
        "-9223372036854775809",
        "'-9223372036854775809' is out of range for bigint (-9223372036854775808 to 9223372036854775807)",
        True,
        id="bigint",
    ),
    pytest.param("i4", "1" * 5000, "is out of range for integer (-2147483648 to 2147483647)", True, id="5000-digits"),
    pytest.param("r", "3.5e38", "'3.5e38' is out of range for real", True, id="real-high"),
    pytest.param("r", "1e-50", "'1e-50' is out of range for real", True, id="real-underflow"),
    pytest.param("d", "-1e309", "'-1e309' is out of range for double precision", True, id="double-high"),
    pytest.param("d", "1e-400", "'1e-400' is out of range for double precision", True, id="double-underflow"),
    pytest.param(
        "n",
        "999.995",
        "'999.995' is out of range for numeric(5,2) (it must round to an absolute value below 10^3)",
        True,
        id="numeric-rounds-over",
    ),
    pytest.param(
        "n",
        "-1000",
        "'-1000' is out of range for numeric(5,2) (it must round to an absolute value below 10^3)",
        True,
        id="numeric-precision",
    ),
    pytest.param("nu", "1e131072", "'1e131072' is out of range for numeric (at most 131072 digits", True, id="numeric"),
    pytest.param("nu", "NaN", "'NaN' is not a number", False, id="numeric-nan"),
    pytest.param("b", "yes", "'yes' is not a boolean (true/false/t/f/1/0)", False, id="boolean"),
    pytest.param("dt", "2023-02-29", "'2023-02-29' is not a date (YYYY-MM-DD)", True, id="date-not-leap"),
    pytest.param("dt", "1900-02-29", "'1900-02-29' is not a date (YYYY-MM-DD)", True, id="date-century"),
    pytest.param("dt", "0000-01-01", "'0000-01-01' is not a date (YYYY-MM-DD)", True, id="date-year-0"),
    pytest.param("dt", "2024-13-01", "'2024-13-01' is not a date (YYYY-MM-DD)", True, id="date-month"),
    pytest.param("ts", "2024-01-02T03", "'2024-01-02T03' is not a timestamp without offset", True, id="ts-hour"),
    pytest.param("ts", "2024-01-02 24:00:01", "is not a timestamp without offset", True, id="ts-24h"),
    pytest.param(
        "ts", "2024-01-02 03:04:05+01:00", "is not a timestamp without offset", False, id="ts-offset-would-be-dropped"
    ),
    pytest.param("tz", "2024-01-02 03:04:05+16:00", "is not a timestamp with an offset", True, id="tz-16h"),
    pytest.param("tz", "2024-01-02 03:04:05", "is not a timestamp with an offset", False, id="tz-without-offset"),
    pytest.param(
        "v", "abcd", "'abcd' is 4 characters long, longer than character varying(3) allows", True, id="varchar"
    ),
    pytest.param("t", "a\x00b", "holds a NUL character, which PostgreSQL text cannot store", True, id="text-nul"),
]


@pytest.mark.parametrize(("column", "field", "message", "postgres_refuses"), OUT_OF_RANGE)
def test_a_value_outside_its_declared_type_fails_naming_file_line_and_column(
    tap_typed_csv: Path,
    tmp_path: Path,
    base_env: dict[str, str],
    throwaway_database,
    column: str,
    field: str,
    message: str,
    postgres_refuses: bool,
) -> None:
    good = ",".join("1" if name == "row" else "" for name in TYPED_COLUMNS)
    bad = ",".join("2" if name == "row" else field if name == column else "" for name in TYPED_COLUMNS)
    run = run_tap(
        tap_typed_csv,
        tmp_path,
        f"{TYPED_HEADER}\n{good}\n{bad}\n",
        schema=TYPED_SCHEMA,
        key_properties=["row"],
        batch=True,
    )

    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if "data.csv line 3: column " in line]
    assert len(errors) == 1, run.stderr
    assert f"data.csv line 3: column {column!r}: " in errors[0]
    assert message in errors[0]
    # Where the tap claims "out of range", PostgreSQL agrees; the rest are stricter on purpose.
    with psycopg.connect(
        conninfo(SOURCE, base_env, database=throwaway_database("typed_csv"), admin=True), autocommit=True
    ) as conn:
        typed_table(conn, "one", {column: TYPED_COLUMNS[column]})
        try:
            conn.execute("INSERT INTO one VALUES (%s)", (field,))
            refused = False
        except psycopg.DataError:
            refused = True
    assert refused == postgres_refuses


def test_bad_input_is_recorded_for_the_orchestrator_as_a_permanent_failure(tap_typed_csv: Path, tmp_path: Path) -> None:
    failures = tmp_path / "failures.jsonl"
    csv_text = f"{HEADER}\n10248,11,14,12,0\n10248,42,9.8,40000,0\n"
    run = run_tap(tap_typed_csv, tmp_path, csv_text, batch=True, env={"PIPELINE_FAILURE_FILE": str(failures)})

    message = "data.csv line 3: column 'quantity': '40000' is out of range for smallint (-32768 to 32767)"
    assert_fails_with(run, message)
    records = [json.loads(line) for line in failures.read_text().splitlines()]
    assert records == [{"component": "tap-typed-csv", "transient": False, "message": message}]


def test_a_value_out_of_range_fails_in_record_mode_too(tap_typed_csv: Path, tmp_path: Path) -> None:
    run = run_tap(tap_typed_csv, tmp_path, f"{HEADER}\n10248,11,14,12,0\n10248,42,9.8,40000,0\n")

    assert_fails_with(run, "data.csv line 3: column 'quantity': '40000' is out of range for smallint (-32768 to 32767)")
    assert [record["product_id"] for record in run.records()] == [11]


UNSUPPORTED = [
    pytest.param({"type": "number", "x-sql-datatype": "money"}, "type 'money' is not supported", id="money"),
    pytest.param({"type": "string", "x-sql-datatype": "char(3)"}, "type 'char(3)' is not supported", id="char"),
    pytest.param({"type": "string", "x-sql-datatype": "integer[]"}, "type 'integer[]' is not supported", id="array"),
    pytest.param({"type": "string", "x-sql-datatype": "jsonb"}, "type 'jsonb' is not supported", id="jsonb"),
    pytest.param(
        {"type": "number", "x-sql-datatype": "numeric(3,4)"},
        "type 'numeric(3,4)' is not supported (the scale of numeric(3,4) must be between 0 and the precision)",
        id="numeric-scale",
    ),
    pytest.param(
        {"type": "string", "x-sql-datatype": "varchar(0)"}, "type 'varchar(0)' is not supported", id="varchar-0"
    ),
    pytest.param({"type": "integer", "x-sql-datatype": "int(3)"}, "type 'int(3)' is not supported", id="modifier"),
    pytest.param({"type": "integer"}, "declares no x-sql-datatype; declare one of: smallint", id="undeclared"),
    pytest.param(
        {"type": "string", "x-sql-datatype": "integer"},
        "type 'integer' travels as JSON type 'integer'; set \"type\" to 'integer'",
        id="json-type-mismatch",
    ),
    pytest.param(
        {"type": "string", "format": "date", "x-sql-datatype": "text"},
        "format 'date' contradicts type 'text'; remove it",
        id="format-mismatch",
    ),
]


@pytest.mark.parametrize(("prop", "message"), UNSUPPORTED)
def test_a_schema_declaring_an_unsupported_type_is_refused_at_start(
    tap_typed_csv: Path, tmp_path: Path, prop: dict[str, Any], message: str
) -> None:
    schema = {"type": "object", "properties": {"id": {"type": "integer", "x-sql-datatype": "integer"}, "odd": prop}}
    run = run_tap(tap_typed_csv, tmp_path, "id,odd\n1,x\n", schema=schema, key_properties=["id"], batch=True)

    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr
    [error] = [line for line in run.stderr.splitlines() if "schema.json: column 'odd'" in line]
    assert message in error
    assert run.messages("SCHEMA") == []
    assert not (tmp_path / INCOMING).exists()
