"""target-lfs as a real process fed hand-written Singer messages: exact bytes, metadata, layout, refusals."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import project_env

DAY = "2024-01-02"
JOB = "postgres-to-lfs"
JSON_TYPES = ["string", "number", "integer", "array", "object", "boolean", "null"]

ITEMS_PROPERTIES: dict[str, Any] = {
    "id": {"type": ["integer"], "x-sql-datatype": "integer"},
    "name": {"type": ["string", "null"], "x-sql-datatype": "text"},
    "note": {"type": ["string", "null"], "x-sql-datatype": "character varying(40)"},
    "flag": {"type": ["boolean", "null"], "x-sql-datatype": "boolean"},
    "price": {"type": ["number", "null"], "x-sql-datatype": "numeric(10,2)"},
    "ratio": {"type": ["number", "null"], "x-sql-datatype": "real"},
    "bin": {"type": ["string", "null"], "x-sql-datatype": "bytea", "contentEncoding": "base16"},
    "doc": {"type": JSON_TYPES, "additionalProperties": True, "x-sql-datatype": "jsonb"},
    "day": {"type": ["string", "null"], "format": "date", "x-sql-datatype": "date"},
}

# Raw lines, so that numbers reach the target with exactly this text.
ITEMS_RECORDS = [
    r'{"id":1,"name":"plain","note":null,"flag":true,"price":12.50,"ratio":18.0,"bin":"DEADbeef",'
    r'"doc":{"a":1,"b":[1.5,"x"],"é":null},"day":"2024-01-02"}',
    r'{"id":2,"name":"","note":"a,b","flag":false,"price":-0.01,"ratio":3.14,"bin":"","doc":"str","day":null}',
    r'{"id":3,"name":" lead \"q\" trail ","note":"line1\nline2\r\n","flag":null,"price":null,"ratio":null,'
    r'"bin":null,"doc":null,"day":null}',
    r'{"id":4,"name":"\\.","note":"tab\tinside","flag":true,"price":1E+2,"ratio":1e-300,"bin":"00",'
    r'"doc":[true,null],"day":"0001-01-01"}',
]

ITEMS_CSV = (
    "id,name,note,flag,price,ratio,bin,doc,day\n"
    '1,plain,,true,12.50,18.0,\\xdeadbeef,"{""a"":1,""b"":[1.5,""x""],""é"":null}",2024-01-02\n'
    '2,"","a,b",false,-0.01,3.14,\\x,"""str""",\n'
    '3," lead ""q"" trail ","line1\nline2\r\n",,,,,,\n'
    '4,"\\.",tab\tinside,true,1E+2,1E-300,\\x00,"[true,null]",0001-01-01\n'
)


def schema_line(stream: str, properties: dict[str, Any], key_properties: list[str]) -> str:
    return json.dumps(
        {"type": "SCHEMA", "stream": stream, "schema": {"properties": properties}, "key_properties": key_properties}
    )


def record_line(stream: str, record_json: str) -> str:
    return f'{{"type":"RECORD","stream":"{stream}","record":{record_json}}}'


def items_messages(stream: str = "public-items") -> list[str]:
    return [schema_line(stream, ITEMS_PROPERTIES, ["id"]), *(record_line(stream, r) for r in ITEMS_RECORDS)]


def run_target(exe: Path, cwd: Path, lines: list[str], **overrides: Any) -> subprocess.CompletedProcess[str]:
    config = {"data_dir": "data", "pipeline_date": DAY, "job": JOB, "folder_template": "postgres/{table}/{date}"}
    config.update(overrides)
    (cwd / "target.json").write_text(json.dumps(config))
    return subprocess.run(
        [exe, "--config", "target.json"],
        env=project_env(),  # the analytics database, which holds the run lock (pipeline/locks.py)
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def staged(cwd: Path, folder: str) -> Path:
    return cwd / "data" / ".staging" / JOB / DAY / folder


def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_csv_bytes_are_postgres_csv_text(target_lfs_exe, tmp_path):
    result = run_target(target_lfs_exe, tmp_path, items_messages())
    assert result.returncode == 0, result.stderr
    written = (staged(tmp_path, f"postgres/items/{DAY}") / "items.csv").read_bytes()
    assert written == ITEMS_CSV.encode("utf-8")


def test_folder_metadata_describes_the_file(target_lfs_exe, tmp_path):
    assert run_target(target_lfs_exe, tmp_path, items_messages()).returncode == 0
    folder = staged(tmp_path, f"postgres/items/{DAY}")
    data = (folder / "items.csv").read_bytes()

    schema = json.loads((folder / "_schema.json").read_text())["tables"]["items"]
    assert schema["key_properties"] == ["id"]
    assert list(schema["schema"]["properties"]) == list(ITEMS_PROPERTIES)
    assert schema["schema"]["properties"] == ITEMS_PROPERTIES
    manifest = json.loads((folder / "_manifest.json").read_text())
    assert manifest == {
        "tables": {
            "items": {"file": "items.csv", "rows": 4, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        }
    }
    assert (folder / "_SUCCESS").read_bytes() == b""
    assert sorted(p.name for p in folder.iterdir()) == ["_SUCCESS", "_manifest.json", "_schema.json", "items.csv"]


def test_empty_table_is_a_header_only_file_with_metadata(target_lfs_exe, tmp_path):
    lines = [schema_line("public-empty_one", {"id": {"type": ["integer"]}, "name": {"type": ["string", "null"]}}, [])]
    assert run_target(target_lfs_exe, tmp_path, lines).returncode == 0
    folder = staged(tmp_path, f"postgres/empty_one/{DAY}")
    assert (folder / "empty_one.csv").read_bytes() == b"id,name\n"
    assert json.loads((folder / "_manifest.json").read_text())["tables"]["empty_one"]["rows"] == 0
    assert (folder / "_SUCCESS").is_file()


def test_tables_share_one_folder_with_the_csv_date_layout(target_lfs_exe, tmp_path):
    lines = [
        schema_line("order_details", {"order_id": {"type": ["integer"]}}, ["order_id"]),
        record_line("order_details", '{"order_id":10248}'),
        *items_messages("public-items"),
    ]
    result = run_target(target_lfs_exe, tmp_path, lines, job="csv-to-lfs", folder_template="csv/{date}")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "data" / ".staging" / "csv-to-lfs" / DAY / "csv" / DAY
    assert sorted(p.name for p in folder.iterdir()) == [
        "_SUCCESS",
        "_manifest.json",
        "_schema.json",
        "items.csv",
        "order_details.csv",
    ]
    assert (folder / "order_details.csv").read_bytes() == b"order_id\n10248\n"
    assert (folder / "items.csv").read_bytes() == ITEMS_CSV.encode("utf-8")
    assert sorted(json.loads((folder / "_manifest.json").read_text())["tables"]) == ["items", "order_details"]
    assert sorted(json.loads((folder / "_schema.json").read_text())["tables"]) == ["items", "order_details"]


def test_writes_only_the_staging_tree_and_publishes_nothing(target_lfs_exe, tmp_path):
    assert run_target(target_lfs_exe, tmp_path, items_messages()).returncode == 0
    assert [p.name for p in (tmp_path / "data").iterdir()] == [".staging"]
    assert sorted(all_files(tmp_path / "data")) == [
        f".staging/{JOB}/{DAY}/postgres/items/{DAY}/{name}"
        for name in ("_SUCCESS", "_manifest.json", "_schema.json", "items.csv")
    ]


def test_rerun_is_byte_identical_and_clears_a_crashed_runs_leftovers(target_lfs_exe, tmp_path):
    assert run_target(target_lfs_exe, tmp_path, items_messages()).returncode == 0
    first = all_files(tmp_path / "data")
    leftover = staged(tmp_path, "postgres/orders/2024-01-02/orders.csv")
    leftover.parent.mkdir(parents=True)
    leftover.write_text("half a file")

    assert run_target(target_lfs_exe, tmp_path, items_messages()).returncode == 0
    assert all_files(tmp_path / "data") == first


def test_small_batches_write_every_row_in_order(target_lfs_exe, tmp_path):
    stream = "public-numbers"
    lines = [
        schema_line(stream, {"n": {"type": ["integer"]}}, []),
        *(record_line(stream, f'{{"n":{i}}}') for i in range(7)),
    ]
    assert run_target(target_lfs_exe, tmp_path, lines, batch_size_rows=2).returncode == 0
    folder = staged(tmp_path, f"postgres/numbers/{DAY}")
    assert (folder / "numbers.csv").read_text() == "n\n" + "".join(f"{i}\n" for i in range(7))
    assert json.loads((folder / "_manifest.json").read_text())["tables"]["numbers"]["rows"] == 7


@pytest.mark.parametrize(
    ("pipeline_date", "message"),
    [
        ("", "target-lfs: PIPELINE_DATE is not set"),
        ("2024-13-01", "target-lfs: PIPELINE_DATE='2024-13-01' is not a valid date"),
        ("2024-1-2", "target-lfs: PIPELINE_DATE='2024-1-2' is not a date of the form YYYY-MM-DD"),
    ],
)
def test_bad_pipeline_date_fails_with_one_line_before_writing(target_lfs_exe, tmp_path, pipeline_date, message):
    result = run_target(target_lfs_exe, tmp_path, items_messages(), pipeline_date=pipeline_date)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(message)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("setting", ["job", "folder_template", "data_dir"])
def test_missing_setting_fails_before_writing(target_lfs_exe, tmp_path, setting):
    result = run_target(target_lfs_exe, tmp_path, items_messages(), **{setting: ""})
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(f"target-lfs: target-lfs setting {setting} is not set")
    assert not (tmp_path / "data").exists()


def test_a_changed_schema_for_a_written_table_is_refused(target_lfs_exe, tmp_path):
    changed = {**ITEMS_PROPERTIES, "extra": {"type": ["string", "null"]}}
    lines = [*items_messages(), schema_line("public-items", changed, ["id"])]
    result = run_target(target_lfs_exe, tmp_path, lines)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "target-lfs: table 'items' was already written in this run by stream 'public-items'; "
        "refusing to overwrite it for a new SCHEMA of stream 'public-items'"
    )
    assert not list((tmp_path / "data").rglob("_SUCCESS"))


def test_two_streams_of_one_table_are_refused(target_lfs_exe, tmp_path):
    result = run_target(target_lfs_exe, tmp_path, [*items_messages("public-items"), *items_messages("sales-items")])
    assert result.returncode == 1
    assert "table 'items' was already written in this run by stream 'public-items'" in result.stderr.splitlines()[-1]


def test_the_same_schema_sent_again_keeps_all_rows(target_lfs_exe, tmp_path):
    messages = items_messages()
    lines = [*messages[:3], messages[0], *messages[3:]]
    assert run_target(target_lfs_exe, tmp_path, lines).returncode == 0
    assert (staged(tmp_path, f"postgres/items/{DAY}") / "items.csv").read_bytes() == ITEMS_CSV.encode("utf-8")


def test_date_time_text_is_written_as_the_tap_sent_it(target_lfs_exe, tmp_path):
    # the SDK would parse it to a datetime; written back it would lose ".000000"
    stream = "public-events"
    properties = {
        "at": {"type": ["string", "null"], "format": "date-time", "x-sql-datatype": "timestamp with time zone"}
    }
    lines = [schema_line(stream, properties, []), record_line(stream, '{"at":"2024-01-02T03:04:05.000000+00:00"}')]
    assert run_target(target_lfs_exe, tmp_path, lines).returncode == 0
    written = (staged(tmp_path, f"postgres/events/{DAY}") / "events.csv").read_text()
    assert written == "at\n2024-01-02T03:04:05.000000+00:00\n"
