"""Step 1 on a Postgres source that holds what real databases hold, through real ``meltano run``s.

Names of every kind, types the analytics database does not have (enums, domains,
composites, ranges, extension types), identity/serial/generated columns and a
partitioned table: each table must land in its own encoded folder, under its exact
name, with the analytics type decided from the catalog, and every value must come
back exactly when the file is COPYed into a table of that type. All tables are read
in one snapshot, and tables that cannot be read are refused, one line each.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pipeline.core import connections
from pipeline.core.names import table_folder
from pipeline.setup.roles import grant_source_reader
from tests.conftest import Pipeline, project_env

DAY = "2024-03-04"
JOB = "postgres-to-lfs"
# The awkward source's schemas the job extracts (TAP_POSTGRES_FILTER_SCHEMAS).
SCHEMAS = '["public", "Sales"]'
LONG_ASCII = "t" + "x" * 62  # 63 bytes: the longest name PostgreSQL keeps
LONG_UTF8 = "é" * 31 + "x"  # 63 bytes, 32 characters

AWKWARD_DDL = f"""
CREATE EXTENSION IF NOT EXISTS citext;
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE pair AS (a integer, b text);
CREATE TYPE floatrange AS RANGE (subtype = float8);
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN small_posint AS posint CHECK (VALUE < 1000);
CREATE DOMAIN short_name AS varchar(10) NOT NULL CHECK (VALUE <> '');

CREATE TABLE typed (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    serial_no serial,
    doubled integer GENERATED ALWAYS AS (pos * 2) STORED,
    m mood, ms mood[], p pair, ps pair[], fr floatrange, ir int4range, im int4multirange,
    ci citext, h hstore,
    pos posint, small small_posint, nm short_name, poss posint[],
    amount numeric(12,2), big numeric, label varchar(15), at timestamptz, day date,
    f8 double precision, ints integer[], flag boolean, bin bytea, doc jsonb, cash money, span interval
);
INSERT INTO typed (m, ms, p, ps, fr, ir, im, ci, h, pos, small, nm, poss, amount, big, label, at, day, f8,
                   ints, flag, bin, doc, cash, span) VALUES
 ('ok', '{{sad,happy}}', '(1,"x,y")', ARRAY['(2,z)'::pair, NULL], '[1.5,2)', '[1,5)', '{{[1,2),[5,7)}}', 'CaSe',
  'a=>1, "b c"=>NULL', 5, 7, 'nm', '{{1,2}}', 1234567890.12, 123456789012345678901234567890.123456789,
  'a,b "c"', '2024-01-02 03:04:05.123456+00', '4713-01-01 BC', 'NaN', '{{1,NULL,3}}', true, '\\x00ff',
  '{{"k": [1, 2.50, "é"]}}', 1234.5, '1 year 2 mons 3 days 04:05:06.5'),
 (NULL, '{{}}', NULL, NULL, 'empty', NULL, '{{}}', '', '', NULL, NULL, 'x', NULL, -0.01, 'NaN', '',
  'infinity', 'infinity', '-Infinity', '{{}}', false, '\\x', 'null', -0.01, '-1 day'),
 (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, E'line\\nbreak', NULL, NULL, NULL, NULL,
  '-infinity', '5874897-12-31', 'Infinity', NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE "Orders" (id integer PRIMARY KEY);
CREATE TABLE orders (id integer PRIMARY KEY);
INSERT INTO "Orders" VALUES (1); INSERT INTO orders VALUES (2);
CREATE TABLE "order items" ("ID" integer, "with space" text, "hy-phen" text, "do.t" text, "q""q" text,
                            "sl/ash" text, ".." text, "имя" text, "{LONG_ASCII}" text, "{LONG_UTF8}" text,
                            "new
line" text, " padded " text, "," text);
INSERT INTO "order items" VALUES (1, 'a', 'b', 'c', 'd', 'e', 'f', 'ж', 'long', 'é', 'nl', 'pad', 'empty');
CREATE TABLE "a-b" (x integer); INSERT INTO "a-b" VALUES (1);
CREATE TABLE "x.y" (x integer); INSERT INTO "x.y" VALUES (2);
CREATE TABLE "q""uote" (x integer); INSERT INTO "q""uote" VALUES (3);
CREATE TABLE "a/b" (x integer); INSERT INTO "a/b" VALUES (4);
CREATE TABLE ".." (x integer); INSERT INTO ".." VALUES (5);
CREATE TABLE "../../escape" (x integer); INSERT INTO "../../escape" VALUES (6);
CREATE TABLE "заказы" (x integer); INSERT INTO "заказы" VALUES (7);
CREATE TABLE "{LONG_ASCII}" (x integer); INSERT INTO "{LONG_ASCII}" VALUES (8);
CREATE TABLE "{LONG_UTF8}" (x integer); INSERT INTO "{LONG_UTF8}" VALUES (9);

CREATE TABLE measurements (id integer, at date, v text) PARTITION BY RANGE (at);
CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measurements_other PARTITION OF measurements DEFAULT;
INSERT INTO measurements VALUES (1, '2024-05-05', 'in 2024'), (2, '2031-01-01', 'later');

CREATE TABLE animals (id integer, name text);
CREATE TABLE dogs (barks boolean) INHERITS (animals);
INSERT INTO animals VALUES (1, 'cat'); INSERT INTO dogs VALUES (2, 'rex', true);

CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."Orders" (id integer PRIMARY KEY, state mood);
INSERT INTO "Sales"."Orders" VALUES (10, 'happy');
CREATE VIEW orders_view AS SELECT id FROM orders;
"""

PUBLIC_TABLES = [
    "typed",
    "Orders",
    "orders",
    "order items",
    "a-b",
    "x.y",
    'q"uote',
    "a/b",
    "..",
    "../../escape",
    "заказы",
    LONG_ASCII,
    LONG_UTF8,
    "measurements",
    "animals",
    "dogs",
]
EXPECTED_TABLES = {("public", name) for name in PUBLIC_TABLES} | {("Sales", "Orders")}

# column -> (x-sql-datatype, x-sql-type-oid, x-source-type or None, x-domain-check or None)
EXPECTED_TYPED: dict[str, tuple[str, int, str | None, str | None]] = {
    "id": ("integer", 23, None, None),
    "serial_no": ("integer", 23, None, None),
    "doubled": ("integer", 23, None, None),
    "m": ("text", 25, "public.mood", None),
    "ms": ("text[]", 1009, "public.mood[]", None),
    "p": ("text", 25, "public.pair", None),
    "ps": ("text[]", 1009, "public.pair[]", None),
    "fr": ("text", 25, "public.floatrange", None),
    "ir": ("text", 25, "int4range", None),
    "im": ("text", 25, "int4multirange", None),
    "ci": ("text", 25, "public.citext", None),
    "h": ("text", 25, "public.hstore", None),
    "pos": ("integer", 23, "public.posint", "CHECK ((VALUE > 0))"),
    "small": ("integer", 23, "public.small_posint", "CHECK (((VALUE)::integer < 1000)) CHECK ((VALUE > 0))"),
    "nm": ("character varying(10)", 1043, "public.short_name", "NOT NULL CHECK (((VALUE)::text <> ''::text))"),
    "poss": ("integer[]", 1007, "public.posint[]", "CHECK ((VALUE > 0))"),
    "amount": ("numeric(12,2)", 1700, None, None),
    "big": ("numeric", 1700, None, None),
    "label": ("character varying(15)", 1043, None, None),
    "at": ("timestamp with time zone", 1184, None, None),
    "day": ("date", 1082, None, None),
    "f8": ("double precision", 701, None, None),
    "ints": ("integer[]", 1007, None, None),
    "flag": ("boolean", 16, None, None),
    "bin": ("bytea", 17, None, None),
    "doc": ("jsonb", 3802, None, None),
    "cash": ("money", 790, None, None),
    "span": ("interval", 1186, None, None),
}


def conninfo(env: dict[str, str], database: str | None = None) -> str:
    """The administrator's connection to the source: the tests build and write the source as its owner."""
    return connections.conninfo(connections.SOURCE, env, database=database, admin=True)


@pytest.fixture(scope="module")
def awkward_db(throwaway_database: Callable[[str], str]) -> str:
    """The awkward source; the reader granted its two schemas, as ``make setup`` does for a schema list."""
    name = throwaway_database("awkward")
    with psycopg.connect(conninfo(project_env(), name), autocommit=True) as conn:
        conn.execute(AWKWARD_DDL)
    grant_source_reader({**project_env(), "TAP_POSTGRES_DATABASE": name, "TAP_POSTGRES_FILTER_SCHEMAS": SCHEMAS})
    return name


def pipeline_for(database: str, data_dir: Path, **env: str) -> Pipeline:
    """A pipeline whose source is ``database`` and whose files go to ``data_dir``."""
    return Pipeline(
        env={**project_env(), "TAP_POSTGRES_DATABASE": database, "DATA_DIR": str(data_dir), **env}, data_dir=data_dir
    )


@pytest.fixture(scope="module")
def awkward_day(awkward_db: str, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """postgres-to-lfs run once, for real, on the awkward source with schemas public and Sales."""
    pipeline = pipeline_for(
        awkward_db, tmp_path_factory.mktemp("awkward") / "data", TAP_POSTGRES_FILTER_SCHEMAS=SCHEMAS
    )
    pipeline.run_ok(JOB, day=DAY)
    return pipeline


def receipt(pipeline: Pipeline) -> dict[str, Any]:
    return json.loads((pipeline.data_dir / "_runs" / JOB / f"{DAY}.json").read_text())


def described(pipeline: Pipeline, key: str) -> dict[str, Any]:
    folder = pipeline.data_dir / receipt(pipeline)["tables"][key]["folder"]
    return json.loads((folder / "_schema.json").read_text())["tables"][key]


def test_every_base_table_lands_once_in_its_own_encoded_folder(awkward_day: Pipeline) -> None:
    tables = receipt(awkward_day)["tables"]
    assert set(tables) == {table_folder(schema, name) for schema, name in EXPECTED_TABLES}
    for schema, name in EXPECTED_TABLES:
        key = table_folder(schema, name)
        assert tables[key]["folder"] == f"postgres/{key}/{DAY}"
        assert tables[key]["file"] == f"{key}.csv"
        entry = described(awkward_day, key)
        assert (entry["source"], entry["source_schema"], entry["table"]) == ("postgres", schema, name)
    # nothing outside the day folders, whatever the names: every file is under postgres/<key>/<day>/ or _runs/
    data = awkward_day.data_dir
    for path in data.rglob("*"):
        if path.is_file():
            parts = path.relative_to(data).parts
            assert parts[0] in {"postgres", "_runs"}, path
            if parts[0] == "postgres":
                assert (len(parts), parts[1] in tables, parts[2]) == (4, True, DAY), path
    assert not (data.parent / "escape").exists()


def test_the_partitioned_table_is_read_once_through_its_parent(awkward_day: Pipeline) -> None:
    tables = receipt(awkward_day)["tables"]
    assert tables["measurements"]["rows"] == 2
    assert not {key for key in tables if key.startswith("measurements_")}


def test_an_inheriting_tables_rows_are_in_its_own_table_only(awkward_day: Pipeline) -> None:
    tables = receipt(awkward_day)["tables"]
    assert (tables["animals"]["rows"], tables["dogs"]["rows"]) == (1, 1)


def test_each_column_gets_its_analytics_type_from_the_catalog(awkward_day: Pipeline) -> None:
    properties = described(awkward_day, "typed")["schema"]["properties"]
    assert list(properties) == list(EXPECTED_TYPED)
    for column, (datatype, oid, source_type, domain_check) in EXPECTED_TYPED.items():
        prop = properties[column]
        assert (prop["x-sql-datatype"], prop["x-sql-type-oid"]) == (datatype, oid), column
        assert prop.get("x-source-type") == source_type, column
        assert prop.get("x-domain-check") == domain_check, column
    assert properties["nm"]["x-sql-typmod"] == 14  # varchar(10) of the domain
    assert properties["amount"]["x-sql-typmod"] == (12 << 16 | 2) + 4
    assert described(awkward_day, "typed")["key_properties"] == ["id"]
    assert described(awkward_day, "%53ales.%4frders")["schema"]["properties"]["state"]["x-source-type"] == "public.mood"


def test_every_value_comes_back_when_the_files_are_copied_into_the_analytics_types(awkward_day: Pipeline) -> None:
    """COPY each file into a table of the recorded types (format_type of oid and typmod, as step 2 does),
    then compare every value, as text, with the source's value cast to that type."""
    with awkward_day.connect(connections.SOURCE) as conn:
        conn.execute("CREATE SCHEMA roundtrip")
        try:
            for schema, name in sorted(EXPECTED_TABLES):
                key = table_folder(schema, name)
                entry = described(awkward_day, key)
                file = awkward_day.data_dir / "postgres" / key / DAY / f"{key}.csv"
                assert_round_trip(conn, schema, name, entry["schema"]["properties"], file)
        finally:
            conn.execute("DROP SCHEMA roundtrip CASCADE")


def assert_round_trip(conn: psycopg.Connection, schema: str, name: str, properties: dict[str, Any], file: Path) -> None:
    columns = list(properties)
    types = {
        column: conn.execute(
            "SELECT format_type(%s, %s)", (properties[column]["x-sql-type-oid"], properties[column]["x-sql-typmod"])
        ).fetchone()[0]
        for column in columns
    }
    copy = sql.Identifier("roundtrip", f"{schema}.{name}")
    conn.execute(
        sql.SQL("CREATE TABLE {} ({})").format(
            copy, sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types[c])) for c in columns)
        )
    )
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)").format(copy)) as out:
        out.write(file.read_bytes())
    as_text = sql.SQL(", ").join(sql.SQL("{}::{}::text").format(sql.Identifier(c), sql.SQL(types[c])) for c in columns)
    # As the tap reads it: a partitioned table with its partitions, any other without tables inheriting from it.
    only = sql.SQL("" if name == "measurements" else "ONLY ")
    source = sql.Composed([only, sql.Identifier(schema, name)])
    for left, right in ((source, copy), (copy, source)):
        diff = conn.execute(
            sql.SQL("SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b}").format(cols=as_text, a=left, b=right)
        ).fetchall()
        assert diff == [], f"{schema}.{name}: rows of {left.as_string(conn)} missing from {right.as_string(conn)}"
    count = sql.SQL("SELECT count(*) FROM {}")
    source_rows = conn.execute(count.format(source)).fetchone()[0]
    assert conn.execute(count.format(copy)).fetchone()[0] == source_rows


def test_a_rerun_is_byte_identical(awkward_day: Pipeline) -> None:
    before = {p: p.read_bytes() for p in (awkward_day.data_dir / "postgres").rglob("*") if p.is_file()}
    awkward_day.run_ok(JOB, day=DAY)
    after = {p: p.read_bytes() for p in (awkward_day.data_dir / "postgres").rglob("*") if p.is_file()}
    assert after == before


SNAPSHOT_DDL = """
CREATE TABLE a_parent (id integer PRIMARY KEY);
CREATE TABLE m_middle (id integer PRIMARY KEY);
CREATE TABLE z_child (id integer PRIMARY KEY, parent_id integer REFERENCES a_parent);
INSERT INTO a_parent VALUES (1); INSERT INTO m_middle VALUES (1); INSERT INTO z_child VALUES (1, 1);
"""


def wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    """Wait until ``path`` exists; fail the test if the process ends first."""
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the job ended before {path.name} appeared:\n{process.communicate()[1][-4000:]}")
        time.sleep(0.05)


def test_all_tables_are_read_in_one_snapshot(throwaway_database: Callable[[str], str], tmp_path: Path) -> None:
    """A writer commits a parent and its child after the first table is read: the day has both or neither."""
    database = throwaway_database("snapshot")
    with psycopg.connect(conninfo(project_env(), database), autocommit=True) as conn:
        conn.execute(SNAPSHOT_DDL)
    gate = tmp_path / "gate"
    pipeline = pipeline_for(database, tmp_path / "data", PIPELINE_TEST_PAUSE_AFTER_FIRST_TABLE=str(gate))
    with pipeline.start(JOB, day=DAY) as process:
        try:
            wait_for(gate.with_name("gate.reached"), process)
            with psycopg.connect(conninfo(project_env(), database)) as writer, writer.transaction():
                writer.execute("INSERT INTO a_parent VALUES (2)")
                writer.execute("INSERT INTO m_middle VALUES (2)")
                writer.execute("INSERT INTO z_child VALUES (2, 2)")
            gate.touch()
            _, stderr = process.communicate(timeout=600)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, stderr[-4000:]

    ids = {
        table: (tmp_path / "data" / "postgres" / table / DAY / f"{table}.csv").read_text().splitlines()[1:]
        for table in ("a_parent", "m_middle", "z_child")
    }
    # The snapshot was taken before the first table was read, so the rows committed
    # after it are in none of the tables; reading table by table would have given some.
    assert ids == {"a_parent": ["1"], "m_middle": ["1"], "z_child": ["1,1"]}


@pytest.fixture
def restricted_source(throwaway_database: Callable[[str], str]) -> Iterator[tuple[str, str]]:
    """A source with tables the user cannot extract, and that user (dropped afterwards)."""
    database = throwaway_database("refused")
    role = f"reader_{uuid.uuid4().hex[:10]}"
    env = project_env()
    with psycopg.connect(conninfo(env, database), autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE fine (id integer);
            CREATE TABLE nothing ();
            CREATE TABLE secret (id integer);
            CREATE TABLE "Partly Secret" (id integer, "PIN code" text);
            CREATE SCHEMA "Hidden";
            CREATE TABLE "Hidden".t (id integer);
            """
        )
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(role))
        )
        conn.execute(sql.SQL('GRANT SELECT ON fine, nothing, "Hidden".t TO {}').format(sql.Identifier(role)))
        conn.execute(sql.SQL('GRANT SELECT (id) ON "Partly Secret" TO {}').format(sql.Identifier(role)))
    try:
        yield database, role
    finally:
        with psycopg.connect(conninfo(env, database), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_tables_that_cannot_be_extracted_are_listed_one_line_each_and_nothing_is_published(
    restricted_source: tuple[str, str], tmp_path: Path
) -> None:
    database, role = restricted_source
    schemas = '["public", "Hidden", "missing"]'
    pipeline = pipeline_for(database, tmp_path / "data", TAP_POSTGRES_USER=role, TAP_POSTGRES_FILTER_SCHEMAS=schemas)
    result = pipeline.run(JOB, day=DAY)
    assert result.returncode != 0
    # Meltano prefixes each line of the plugin's stderr with a time stamp and the plugin's name.
    marker = "tap-postgres-native: "
    lines = [line[line.index(marker) :] for line in result.stderr.splitlines() if marker in line]
    assert lines == [
        f'tap-postgres-native: schema "Hidden": user {role} may not use it; GRANT USAGE ON SCHEMA "Hidden" TO {role}',
        "tap-postgres-native: schema 'missing' of filter_schemas does not exist in the source: correct filter_schemas",
        'tap-postgres-native: table public."Partly Secret", column "PIN code": user '
        f'{role} may not read it; GRANT SELECT ("PIN code") ON public."Partly Secret" TO {role}',
        "tap-postgres-native: table public.nothing has no columns, so it has nothing to extract: "
        "add a column or drop the table",
        f"tap-postgres-native: table public.secret: user {role} may not read it; "
        f"GRANT SELECT ON public.secret TO {role}, or drop it from the source",
        "tap-postgres-native: 5 source schema(s), table(s) or column(s) cannot be extracted "
        "(each listed above with its fix); "
        "nothing was extracted and the job publishes nothing",
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "_runs").exists()
    assert not (tmp_path / "data" / "postgres").exists()


def test_an_unreachable_source_is_a_transient_failure(tap_postgres_native_exe: Path, tmp_path: Path) -> None:
    env = project_env()
    config = tmp_path / "tap.json"
    config.write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "port": 1,
                "user": env["TAP_POSTGRES_USER"],
                "password": "x",
                "database": "nowhere",
                "filter_schemas": ["public"],
            }
        )
    )
    failures = tmp_path / "failures.jsonl"
    result = subprocess.run(
        [tap_postgres_native_exe, "--config", config],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PIPELINE_FAILURE_FILE": str(failures)},
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("tap-postgres-native: cannot reach the source database: ")
    assert "Traceback" not in result.stderr
    [record] = [json.loads(line) for line in failures.read_text().splitlines()]
    assert record["component"] == "tap-postgres-native"
    assert record["transient"] is True


def test_record_mode_sends_mapped_columns_as_their_text(
    tap_postgres_native_exe: Path, awkward_db: str, tmp_path: Path
) -> None:
    """Without the day-file settings (RECORD messages), a mapped column's value is its text form too.

    ``dates_as_string``: Python's dates cannot hold the fixture's 4713 BC (the COPY path has no such limit).
    """
    env = project_env()
    config = tmp_path / "tap.json"
    settings = {key: env[f"TAP_POSTGRES_{key.upper()}"] for key in ("host", "user", "password")}
    config.write_text(
        json.dumps(
            {**settings, "port": int(env["TAP_POSTGRES_PORT"]), "database": awkward_db, "dates_as_string": True}
            | {"filter_schemas": ["public"]}  # never the server's own schemas, which the reader cannot read
        )
    )
    result = subprocess.run([tap_postgres_native_exe, "--config", config], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    [first] = [
        m["record"]
        for m in messages
        if m["type"] == "RECORD" and m["stream"] == "public-typed" and m["record"]["id"] == 1
    ]
    assert (first["m"], first["ms"], first["p"], first["ps"]) == ("ok", ["sad", "happy"], '(1,"x,y")', ["(2,z)", None])
    assert (first["ci"], first["h"], first["ir"], first["pos"], first["poss"]) == (
        "CaSe",
        '"a"=>"1", "b c"=>NULL',
        "[1,5)",
        5,
        [1, 2],
    )
