"""target-lfs as a real process fed hand-written Singer messages: exact bytes, metadata, layout, refusals."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.names import encode_name
from pipeline.days.handover import Handover
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


def schema_line(
    stream: str, properties: dict[str, Any], key_properties: list[str], identity: tuple[str, str] | None = None
) -> str:
    """A SCHEMA message; ``identity`` is the (schema, table) that tap-postgres-native names, else the stream's.

    By default a stream ``<schema>-<table>`` gets the identity the tap would send.
    """
    schema: dict[str, Any] = {"properties": properties}
    if identity is None and "-" in stream:
        identity = tuple(stream.split("-", 1))  # type: ignore[assignment]
    if identity is not None:
        schema = {"x-source-schema": identity[0], "x-source-table": identity[1], **schema}
    return json.dumps({"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": key_properties})


def record_line(stream: str, record_json: str) -> str:
    return f'{{"type":"RECORD","stream":"{stream}","record":{record_json}}}'


def items_messages(stream: str = "public-items") -> list[str]:
    return [schema_line(stream, ITEMS_PROPERTIES, ["id"]), *(record_line(stream, r) for r in ITEMS_RECORDS)]


def run_target(exe: Path, cwd: Path, lines: list[str], **overrides: Any) -> subprocess.CompletedProcess[str]:
    config = {
        "data_dir": "data",
        "pipeline_date": DAY,
        "job": JOB,
        "source": "postgres",
        "folder_template": "postgres/{table}/{date}",
    }
    config.update(overrides)
    (cwd / "target.json").write_text(json.dumps(config))
    return subprocess.run(
        [exe, "--config", "target.json"],
        env=project_env(),  # the analytics database, which holds the run lock (pipeline/runs/locks.py)
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
    assert schema == {
        "source": "postgres",
        "source_schema": "public",
        "table": "items",
        "key_properties": ["id"],
        "schema": {"type": "object", "properties": ITEMS_PROPERTIES},
    }
    assert list(schema["schema"]["properties"]) == list(ITEMS_PROPERTIES)
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
        *(line.replace("public-items", "items") for line in items_messages("items")),
    ]
    result = run_target(target_lfs_exe, tmp_path, lines, job="csv-to-lfs", source="csv", folder_template="csv/{date}")
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
    schemas = json.loads((folder / "_schema.json").read_text())["tables"]
    assert sorted(schemas) == ["items", "order_details"]
    assert {key: (s["source"], s["source_schema"], s["table"]) for key, s in schemas.items()} == {
        "items": ("csv", None, "items"),
        "order_details": ("csv", None, "order_details"),
    }


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


@pytest.mark.parametrize("setting", ["job", "folder_template", "data_dir", "source"])
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
        "target-lfs: table 'items' (folder items) was already written in this run by stream 'public-items'; "
        "refusing to overwrite it for a new SCHEMA of stream 'public-items'"
    )
    assert not list((tmp_path / "data").rglob("_SUCCESS"))


def test_two_streams_of_one_table_are_refused(target_lfs_exe, tmp_path):
    other = [line.replace('"public-items"', '"renamed"') for line in items_messages()]
    result = run_target(target_lfs_exe, tmp_path, [*items_messages(), *other])
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert "table 'items' (folder items) was already written in this run by stream 'public-items'" in last


def test_the_same_table_name_in_two_schemas_gets_two_folders(target_lfs_exe, tmp_path):
    result = run_target(target_lfs_exe, tmp_path, [*items_messages("public-items"), *items_messages("sales-items")])
    assert result.returncode == 0, result.stderr
    assert (staged(tmp_path, f"postgres/items/{DAY}") / "items.csv").read_bytes() == ITEMS_CSV.encode("utf-8")
    sales = staged(tmp_path, f"postgres/sales.items/{DAY}")
    assert (sales / "sales.items.csv").read_bytes() == ITEMS_CSV.encode("utf-8")
    described = json.loads((sales / "_schema.json").read_text())["tables"]["sales.items"]
    assert (described["source_schema"], described["table"]) == ("sales", "items")


AWKWARD_TABLES = ["Orders", "orders", "a-b", "a/b", "..", ".", "x y", 'q"uote', "заказы", "é" * 31 + "x", "a" * 63]


def test_any_table_name_gets_its_own_encoded_folder_inside_the_staging_tree(target_lfs_exe, tmp_path):
    lines = []
    for number, table in enumerate(AWKWARD_TABLES):
        stream = f"stream-{number}"
        lines.append(schema_line(stream, {"id": {"type": ["integer"]}}, ["id"], identity=("public", table)))
        lines.append(record_line(stream, f'{{"id":{number}}}'))
    result = run_target(target_lfs_exe, tmp_path, lines)
    assert result.returncode == 0, result.stderr

    root = tmp_path / "data" / ".staging" / JOB / DAY / "postgres"
    written = {p.relative_to(tmp_path / "data").as_posix() for p in (tmp_path / "data").rglob("*.csv")}
    assert len(written) == len(AWKWARD_TABLES)
    for number, table in enumerate(AWKWARD_TABLES):
        key = encode_name(table)
        folder = root / key / DAY
        assert (folder / f"{key}.csv").read_text() == f"id\n{number}\n"
        assert json.loads((folder / "_schema.json").read_text())["tables"][key]["table"] == table
    assert all(name.startswith(f".staging/{JOB}/{DAY}/postgres/") for name in written)


def test_a_postgres_stream_without_its_identity_is_refused(target_lfs_exe, tmp_path):
    lines = [schema_line("items", ITEMS_PROPERTIES, ["id"]), record_line("items", ITEMS_RECORDS[0])]
    result = run_target(target_lfs_exe, tmp_path, lines)
    assert result.returncode == 1
    assert "stream 'items': its SCHEMA message has no x-source-schema / x-source-table" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_name_too_long_for_a_file_is_refused_in_one_line(target_lfs_exe, tmp_path):
    lines = [schema_line("s-t", {"id": {"type": ["integer"]}}, [], identity=("ü" * 31, "ü" * 31))]
    result = run_target(target_lfs_exe, tmp_path, lines)
    assert result.returncode == 1
    assert "more than the file system's 255; rename the table" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


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


def handed_over(cwd: Path, text: bytes, *, folder: str = f".staging/{JOB}/{DAY}/.incoming/run1") -> tuple[Path, str]:
    """A day file as a tap writes it (pipeline.days.handover), and the BATCH message handing it over."""
    path = cwd / "data" / folder / "items.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text)
    entry = Handover(uri=path.as_uri(), rows=4, sha256=hashlib.sha256(text).hexdigest()).manifest_entry()
    batch = {"type": "BATCH", "stream": "public-items", "encoding": {"format": "csv"}, "manifest": [entry]}
    return path, json.dumps(batch)


def test_a_handed_over_day_file_is_adopted_by_a_rename_with_the_taps_figures(target_lfs_exe, tmp_path):
    path, batch = handed_over(tmp_path, ITEMS_CSV.encode("utf-8"))
    inode = path.stat().st_ino
    result = run_target(target_lfs_exe, tmp_path, [schema_line("public-items", ITEMS_PROPERTIES, ["id"]), batch])
    assert result.returncode == 0, result.stderr
    folder = staged(tmp_path, f"postgres/items/{DAY}")
    assert (folder / "items.csv").stat().st_ino == inode  # renamed, not copied
    assert not path.exists()
    data = ITEMS_CSV.encode("utf-8")
    assert json.loads((folder / "_manifest.json").read_text())["tables"]["items"] == {
        "file": "items.csv",
        "rows": 4,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }


def test_a_day_file_whose_header_is_not_the_streams_columns_is_refused_in_one_line(target_lfs_exe, tmp_path):
    path, batch = handed_over(tmp_path, ITEMS_CSV.replace("id,name,", "id,nom,", 1).encode("utf-8"))
    result = run_target(target_lfs_exe, tmp_path, [schema_line("public-items", ITEMS_PROPERTIES, ["id"]), batch])
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"target-lfs: table 'items' (stream public-items): {path} has the header "
        "['id', 'nom', 'note', 'flag', 'price', 'ratio', 'bin', 'doc', 'day'], not the stream's columns "
        "['id', 'name', 'note', 'flag', 'price', 'ratio', 'bin', 'doc', 'day']"
    )
    assert not list((tmp_path / "data").rglob("_SUCCESS"))


def test_a_day_file_outside_the_jobs_staging_tree_is_refused(target_lfs_exe, tmp_path):
    path, batch = handed_over(tmp_path, ITEMS_CSV.encode("utf-8"), folder=".staging/.batches")
    result = run_target(target_lfs_exe, tmp_path, [schema_line("public-items", ITEMS_PROPERTIES, ["id"]), batch])
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(f"target-lfs: table 'items': the tap wrote {path}, not under ")
    assert path.exists()


def test_a_csv_batch_file_without_its_figures_is_refused(target_lfs_exe, tmp_path):
    path, handover = handed_over(tmp_path, ITEMS_CSV.encode("utf-8"))
    batch = json.dumps({**json.loads(handover), "manifest": [path.as_uri()]})
    result = run_target(target_lfs_exe, tmp_path, [schema_line("public-items", ITEMS_PROPERTIES, ["id"]), batch])
    assert result.returncode == 1
    assert "comes without its row count and sha256" in result.stderr.splitlines()[-1]
