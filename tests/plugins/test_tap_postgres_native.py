"""tap-postgres-native against a real throwaway database, and the step-1 round trip through target-lfs.

The round trip is the point: what the tap reads and target-lfs writes must COPY back
into tables of the declared types with exactly the source's values.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pipeline.core import connections
from tests.conftest import project_env
from tests.plugins.conftest import write_tap_config

SOURCE_DDL = r"""
CREATE TABLE everything (
    id integer PRIMARY KEY,
    s smallint, b bigint, n numeric(10,2), nn numeric, r real, d double precision,
    flag boolean, day date, ts timestamp,
    t text, v varchar(15), c bpchar, c3 char(3), bin bytea, j json, jb jsonb
);
INSERT INTO everything VALUES
 (1, 1, 9000000000, 12.50, 12345678901234567890.123456789, 18, 0.1,
  true, '2024-01-02', '2024-01-02 03:04:05.5',
  'plain', 'a,b', 'x', 'ab', '\xDEADbeef', '{"a": 1, "b": [1.5, "x"], "é": null}', '{"k": 1}'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, false, NULL, NULL, '', '', NULL, NULL, '\x', '"str"', '[1, 2]'),
 (3, -2, 0, -0.01, 0, 3.14, 1e-300, NULL, '0001-01-01', '1999-12-31 23:59:59',
  ' lead "q" trail ', 'comma, "quote"', 'y', 'abc', '\x00ff', '1.25', 'true'),
 (4, 32767, -9223372036854775808, 99999999.99, -1.5e-20, 1.17549435e-38, 1.7976931348623157e308, NULL, NULL, NULL,
  E'line1\nline2\r\n', '\.', NULL, NULL, NULL, '[]', '"s"');
CREATE TABLE empty_one (id integer PRIMARY KEY, name text);
CREATE VIEW v_everything AS SELECT id, t FROM everything;
CREATE MATERIALIZED VIEW mv_everything AS SELECT id FROM everything;
"""

EXPECTED_SQL_TYPES = {
    "id": "integer",
    "s": "smallint",
    "b": "bigint",
    "n": "numeric(10,2)",
    "nn": "numeric",
    "r": "real",
    "d": "double precision",
    "flag": "boolean",
    "day": "date",
    "ts": "timestamp without time zone",
    "t": "text",
    "v": "character varying(15)",
    "c": "bpchar",
    "c3": "character(3)",
    "bin": "bytea",
    "j": "json",
    "jb": "jsonb",
}


ENV = project_env()


def conninfo(dbname: str) -> str:
    return connections.conninfo(connections.SOURCE, ENV, database=dbname, admin=True)


@pytest.fixture(scope="module")
def source_db(throwaway_database) -> str:
    name = throwaway_database("tap_native")
    with psycopg.connect(conninfo(name), autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
    return name


@pytest.fixture
def tap_config(source_db: str, tmp_path: Path) -> Path:
    return write_tap_config(tmp_path / "tap.json", source_db)


def run_tap(exe: Path, config: Path, *args: str) -> str:
    result = subprocess.run([exe, "--config", config, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def load_day(exe: Path, config: Path, singer: str, cwd: Path) -> None:
    """target-lfs on the tap's output; the analytics database holds its run lock (pipeline/runs/locks.py)."""
    load = subprocess.run(
        [exe, "--config", config], input=singer, capture_output=True, text=True, cwd=cwd, timeout=120, env=project_env()
    )
    assert load.returncode == 0, load.stderr


def records_by_id(singer_output: str, stream: str) -> dict[int, dict[str, Any]]:
    # parse_float=str keeps each number's text exactly as the tap wrote it
    messages = [json.loads(line, parse_float=str) for line in singer_output.splitlines()]
    return {m["record"]["id"]: m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == stream}


def test_discover_declares_each_columns_native_type(tap_postgres_native_exe, tap_config):
    catalog = json.loads(run_tap(tap_postgres_native_exe, tap_config, "--discover"))
    streams = {s["tap_stream_id"]: s for s in catalog["streams"]}

    assert set(streams) == {"public-everything", "public-empty_one"}  # no view, no materialized view
    properties = streams["public-everything"]["schema"]["properties"]
    assert list(properties) == list(EXPECTED_SQL_TYPES)
    assert {name: prop["x-sql-datatype"] for name, prop in properties.items()} == EXPECTED_SQL_TYPES
    assert {name for name, prop in properties.items() if "contentEncoding" in prop} == {"bin"}
    assert properties["bin"]["contentEncoding"] == "base16"
    assert streams["public-everything"]["key_properties"] == ["id"]
    assert streams["public-empty_one"]["schema"]["properties"]["name"]["x-sql-datatype"] == "text"
    for stream in streams.values():
        root = next(m["metadata"] for m in stream["metadata"] if m["breadcrumb"] == [])
        assert root["selected-by-default"] is True


def test_sync_without_catalog_emits_every_table_with_native_schema(tap_postgres_native_exe, tap_config):
    output = run_tap(tap_postgres_native_exe, tap_config)
    messages = [json.loads(line) for line in output.splitlines()]
    schemas = {m["stream"]: m["schema"] for m in messages if m["type"] == "SCHEMA"}
    assert set(schemas) == {"public-everything", "public-empty_one"}
    assert schemas["public-everything"]["properties"]["bin"] == {
        "type": ["string", "null"],
        "x-sql-datatype": "bytea",
        "x-sql-type-oid": 17,
        "x-sql-typmod": -1,
        "contentEncoding": "base16",
    }
    assert (schemas["public-everything"]["x-source-schema"], schemas["public-everything"]["x-source-table"]) == (
        "public",
        "everything",
    )
    assert not [m for m in messages if m["type"] == "RECORD" and m["stream"] == "public-empty_one"]


def test_sync_values_as_the_tap_emits_them(tap_postgres_native_exe, tap_config):
    rows = records_by_id(run_tap(tap_postgres_native_exe, tap_config), "public-everything")
    assert sorted(rows) == [1, 2, 3, 4]
    one, two, three, four = rows[1], rows[2], rows[3], rows[4]
    # bytea: lower-case hex without \x; the empty bytea is "" and NULL is null
    assert (one["bin"], two["bin"], three["bin"], four["bin"]) == ("deadbeef", "", "00ff", None)
    # numbers keep their text: numeric scale, real 18 as 18.0, float4 shortest form
    assert (one["n"], one["nn"], one["r"], one["d"]) == ("12.50", "12345678901234567890.123456789", "18.0", "0.1")
    assert (four["r"], four["d"], four["b"]) == ("1.1754944e-38", "1.7976931348623157e+308", -9223372036854775808)
    assert (one["flag"], two["flag"], three["flag"]) == (True, False, None)
    assert one["day"] == "2024-01-02"
    assert one["ts"] == "2024-01-02T03:04:05.500000+00:00"
    # NULL and the empty string stay apart
    assert (two["t"], two["v"], two["c"], two["s"]) == ("", "", None, None)
    assert (three["t"], four["t"], four["v"]) == (' lead "q" trail ', "line1\nline2\r\n", "\\.")
    # json/jsonb arrive parsed: objects, arrays, and JSON scalars as Python scalars
    assert one["j"] == {"a": 1, "b": ["1.5", "x"], "é": None}
    assert (one["jb"], two["j"], two["jb"], three["j"], three["jb"]) == ({"k": 1}, "str", [1, 2], "1.25", True)
    assert (one["c"], one["c3"]) == ("x", "ab ")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def comparable(column: str, sql_type: str) -> sql.Composable:
    # json has no equality operator: compare as jsonb (whitespace and key order of
    # json text are not preserved through the tap's parsed values).
    if sql_type == "json":
        return sql.SQL("{}::jsonb").format(sql.Identifier(column))
    return sql.Identifier(column)


def day_file_settings(tmp_path: Path, day: str) -> dict[str, str]:
    """The day-file settings (pipeline.days.handover), the same in tap and target-lfs: the day under tmp_path/data."""
    return {
        "data_dir": str(tmp_path / "data"),
        "pipeline_date": day,
        "job": "postgres-to-lfs",
        "folder_template": "postgres/{table}/{date}",
    }


def write_target_config(tmp_path: Path, day: str) -> Path:
    """A target-lfs config staging postgres-to-lfs's day under tmp_path/data."""
    path = tmp_path / "target.json"
    path.write_text(json.dumps({**day_file_settings(tmp_path, day), "source": "postgres"}))
    return path


def test_round_trip_copy_gives_back_the_source_rows(
    tap_postgres_native_exe, target_lfs_exe, tap_config, source_db, tmp_path
):
    day = "2024-05-06"
    target_config = write_target_config(tmp_path, day)
    singer = run_tap(tap_postgres_native_exe, tap_config)
    load_day(target_lfs_exe, target_config, singer, tmp_path)
    staging = tmp_path / "data" / ".staging" / "postgres-to-lfs" / day

    with psycopg.connect(conninfo(source_db), autocommit=True) as conn:
        for table in ("everything", "empty_one"):
            folder = staging / "postgres" / table / day
            entry = read_json(folder / "_schema.json")["tables"][table]
            columns = list(entry["schema"]["properties"])
            types = {name: entry["schema"]["properties"][name]["x-sql-datatype"] for name in columns}
            copy_name = f"rt_{table}"
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(copy_name)))
            conn.execute(
                sql.SQL("CREATE TABLE {} ({})").format(
                    sql.Identifier(copy_name),
                    sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types[c])) for c in columns),
                )
            )
            with conn.cursor() as cur:
                copy = sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)").format(sql.Identifier(copy_name))
                with cur.copy(copy) as writer:
                    writer.write((folder / f"{table}.csv").read_bytes())

            select_list = sql.SQL(", ").join(comparable(c, types[c]) for c in columns)
            source_count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
            copy_count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(copy_name))).fetchone()[
                0
            ]
            assert copy_count == source_count == read_json(folder / "_manifest.json")["tables"][table]["rows"]
            for left, right in ((table, copy_name), (copy_name, table)):
                diff = conn.execute(
                    sql.SQL("SELECT {cols} FROM {a} EXCEPT SELECT {cols} FROM {b}").format(
                        cols=select_list, a=sql.Identifier(left), b=sql.Identifier(right)
                    )
                ).fetchall()
                assert diff == [], f"rows of {left} missing from {right}"
            # the declared types are the source's: the copy's columns match exactly
            native = conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (table,),
            ).fetchall()
            assert native == list(types.items())


def test_batch_mode_round_trip_copy_gives_back_the_source_rows(
    tap_postgres_native_exe, target_lfs_exe, tap_config, source_db, tmp_path
):
    """With the day-file settings the tap writes each table's day file by COPY, once; the result is the same rows."""
    day = "2024-05-07"
    config = json.loads(tap_config.read_text())
    tap_config.write_text(json.dumps({**config, **day_file_settings(tmp_path, day)}))
    singer = run_tap(tap_postgres_native_exe, tap_config)
    kinds = {json.loads(line)["type"] for line in singer.splitlines()}
    assert "RECORD" not in kinds
    assert "BATCH" in kinds
    target_config = write_target_config(tmp_path, day)
    load_day(target_lfs_exe, target_config, singer, tmp_path)
    incoming = tmp_path / "data" / ".staging" / "postgres-to-lfs" / day / ".incoming"
    assert [list(run.iterdir()) for run in incoming.iterdir()] == [[]]  # adopted: renamed into place
    staging = tmp_path / "data" / ".staging" / "postgres-to-lfs" / day / "postgres"
    assert (staging / "empty_one" / day / "empty_one.csv").read_text() == "id,name\n"
    folder = staging / "everything" / day
    text = (folder / "everything.csv").read_text()
    assert text.splitlines()[0] == ",".join(EXPECTED_SQL_TYPES)
    assert ",true,2024-01-02,2024-01-02 03:04:05.5," in text  # booleans as true/false, ISO dates
    assert read_json(folder / "_manifest.json")["tables"]["everything"]["rows"] == 4  # one row has a line break

    columns = list(EXPECTED_SQL_TYPES)
    with psycopg.connect(conninfo(source_db), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS rt_batch")
        conn.execute("CREATE TABLE rt_batch (LIKE everything)")
        with conn.cursor() as cur, cur.copy("COPY rt_batch FROM STDIN (FORMAT csv, HEADER true)") as writer:
            writer.write((folder / "everything.csv").read_bytes())
        select_list = sql.SQL(", ").join(comparable(c, EXPECTED_SQL_TYPES[c]) for c in columns)
        for left, right in (("everything", "rt_batch"), ("rt_batch", "everything")):
            diff = conn.execute(
                sql.SQL("SELECT {cols} FROM {a} EXCEPT SELECT {cols} FROM {b}").format(
                    cols=select_list, a=sql.Identifier(left), b=sql.Identifier(right)
                )
            ).fetchall()
            assert diff == [], f"rows of {left} missing from {right}"


def discover_with_tables(exe: str, database: str, tables: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """The tap's discovery of ``database`` with TAP_POSTGRES_TABLES set to ``tables``."""
    config = write_tap_config(tmp_path / "tap.json", database, tables=json.dumps(tables))
    return subprocess.run([exe, "--config", config, "--discover"], capture_output=True, text=True, timeout=120)


def test_a_table_read_incrementally_without_a_primary_key_or_its_key_column_is_refused_one_line_each(
    tap_postgres_native_exe, throwaway_database, tmp_path
):
    name = throwaway_database("tap_incremental")
    with psycopg.connect(conninfo(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE no_key (n integer, version bigint); CREATE TABLE keyed (id integer PRIMARY KEY)")
    tables = {
        "public": {
            "no_key": {"replication-method": "INCREMENTAL", "replication-key": "version"},
            "keyed": {"replication-method": "INCREMENTAL", "replication-key": "updated_at"},
        }
    }

    result = discover_with_tables(tap_postgres_native_exe, name, tables, tmp_path)

    assert result.returncode != 0
    assert "table public.keyed: replication-key 'updated_at' is no column of it (TAP_POSTGRES_TABLES)" in result.stderr
    assert (
        "table public.no_key: replication-method INCREMENTAL needs a primary key (a day's changes are merged by it)"
        in result.stderr
    )


def test_a_key_declared_for_an_incremental_table_without_a_primary_key_is_its_streams_key(
    tap_postgres_native_exe, throwaway_database, tmp_path
):
    name = throwaway_database("tap_declared_key")
    with psycopg.connect(conninfo(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE no_key (n integer, version bigint)")
    options = {"replication-method": "INCREMENTAL", "replication-key": "version"}

    declared = discover_with_tables(
        tap_postgres_native_exe, name, {"public": {"no_key": {**options, "table-key-properties": ["n"]}}}, tmp_path
    )
    misnamed = discover_with_tables(
        tap_postgres_native_exe, name, {"public": {"no_key": {**options, "table-key-properties": ["m"]}}}, tmp_path
    )

    assert declared.returncode == 0, declared.stderr
    (stream,) = json.loads(declared.stdout)["streams"]
    root = next(item["metadata"] for item in stream["metadata"] if item["breadcrumb"] == [])
    assert (stream["key_properties"], root["table-key-properties"]) == (["n"], ["n"])
    assert misnamed.returncode != 0
    assert "table public.no_key: table-key-properties 'm' is no column of it (TAP_POSTGRES_TABLES)" in misnamed.stderr


def test_a_rerun_of_the_day_writes_the_same_bytes(tap_postgres_native_exe, target_lfs_exe, tap_config, tmp_path):
    """Written once by the tap and adopted by target-lfs, a day's files and metadata are the same on every run."""
    day = "2024-05-08"
    config = json.loads(tap_config.read_text())
    tap_config.write_text(json.dumps({**config, **day_file_settings(tmp_path, day)}))
    target_config = write_target_config(tmp_path, day)
    staging = tmp_path / "data" / ".staging" / "postgres-to-lfs" / day / "postgres"
    runs = []
    for _ in range(2):
        singer = run_tap(tap_postgres_native_exe, tap_config)
        load_day(target_lfs_exe, target_config, singer, tmp_path)
        runs.append({p.relative_to(staging).as_posix(): p.read_bytes() for p in staging.rglob("*") if p.is_file()})
    assert runs[0] == runs[1]
    assert {
        f"{table}/{day}/{name}"
        for table in ("empty_one", "everything")  # and the copies other tests of the module made
        for name in ("_SUCCESS", "_manifest.json", "_schema.json", f"{table}.csv")
    } <= set(runs[0])
