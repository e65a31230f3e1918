"""Step 1 against a live source that was not designed for it: nothing silently wrong, whatever it does.

Real ``meltano run``s on throwaway databases, each case of issue 16's first half:

* a ``TRUNCATE`` and refill, or a table rewrite, landing during the extract waits for it
  (every table is locked ``IN ACCESS SHARE MODE`` before the snapshot), so the day's
  file is complete; a lock that cannot be had, a statement that cannot finish, or a
  table changed between discovery and the snapshot fails the job in one line, transient;
* row-level security never gives a partial file: a filtered table fails naming both
  fixes; with a policy that lets the reader see every row, or the table left out
  (the per-table ``tables`` setting), the day is complete;
* a source in any server encoding gives UTF-8 files whose values arrive exact, and a
  SQL_ASCII source holding bytes that are not UTF-8 fails naming the table;
* every table the extract skips is named in the job's log and in the day's receipt.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pipeline.core.connections import ANALYTICS, SOURCE
from pipeline.core.crashpoints import MARKER_ENV, PAUSE_AT_ENV
from pipeline.core.names import analytics_schema
from tests.conftest import Pipeline, make_pipeline

pytestmark = pytest.mark.integration

DAY = "2024-05-01"
JOB = "postgres-to-lfs"
JOBS = ("postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics")
ROWS = 500
READER_WAIT = 120  # seconds for a job or a session to reach a point, however loaded the machine
# a_first is copied first (streams go in name order), z_refilled after the test pause.
LIVE_SOURCE = f"""
CREATE TABLE a_first (id integer PRIMARY KEY);
INSERT INTO a_first VALUES (1);
CREATE TABLE z_refilled (id integer PRIMARY KEY, generation integer NOT NULL, payload text);
INSERT INTO z_refilled SELECT i, 0, repeat('x', 100) FROM generate_series(1, {ROWS}) AS i;
"""


def refill(conn: psycopg.Connection, generation: int) -> None:
    """What a nightly job of the source might do: empty z_refilled and fill it again, in one transaction."""
    with conn.transaction():
        conn.execute("TRUNCATE z_refilled")
        conn.execute(
            "INSERT INTO z_refilled SELECT i, %s, repeat('x', 100) FROM generate_series(1, %s) AS i",
            (generation, ROWS),
        )


@pytest.fixture
def live(tmp_path: Path, source_files: dict[str, Path]) -> Iterator[Pipeline]:
    """Throwaway databases whose source is the small live source above."""
    dump = tmp_path / "live.sql"
    dump.write_text(LIVE_SOURCE)
    yield from make_pipeline(tmp_path / "data", dump, source_files["order_details.csv"])


def day_file(pipeline: Pipeline, table: str) -> list[str]:
    """The data rows (header left out) of ``table``'s published file for DAY."""
    return (pipeline.data_dir / "postgres" / table / DAY / f"{table}.csv").read_text(encoding="utf-8").splitlines()[1:]


def receipt(pipeline: Pipeline) -> dict[str, Any] | None:
    path = pipeline.data_dir / "_runs" / JOB / f"{DAY}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def failures(path: Path) -> list[dict[str, Any]]:
    """The failure records of ``PIPELINE_FAILURE_FILE`` (pipeline.core.errors.report_failure)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def start(pipeline: Pipeline, **overrides: str) -> subprocess.Popen[str]:
    """``meltano run postgres-to-lfs`` for DAY in the background."""
    return pipeline.start(JOB, day=DAY, **overrides)


def wait_until(condition: Any, process: subprocess.Popen[str], what: str) -> None:
    """Poll ``condition()`` until true; fail the test if the job ends first or it takes too long."""
    deadline = time.monotonic() + READER_WAIT
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the job ended before {what}:\n{process.communicate()[1][-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {READER_WAIT} s")
        time.sleep(0.05)


def finish(process: subprocess.Popen[str]) -> str:
    """Wait for the job to end; return its stderr."""
    return process.communicate(timeout=600)[1]


@contextlib.contextmanager
def killed_on_failure(process: subprocess.Popen[str]) -> Iterator[None]:
    """Kill the job if it still runs when the block ends (a failed test leaves no process behind)."""
    try:
        yield
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def waits_for_lock(pipeline: Pipeline, pid: int) -> bool:
    """Whether the source session ``pid`` is waiting for a lock."""
    with pipeline.connect(SOURCE) as conn:
        row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row[0] == "Lock"


def test_a_truncate_and_refill_between_two_tables_waits_for_the_extract_and_the_day_is_complete(
    live: Pipeline, tmp_path: Path
) -> None:
    """The TRUNCATE lands after the first table's COPY: without the locks the day's z_refilled would be empty."""
    gate = tmp_path / "gate"
    process = start(live, PIPELINE_TEST_PAUSE_AFTER_FIRST_TABLE=str(gate))
    writer_done = threading.Event()
    with live.connect(SOURCE) as writer, killed_on_failure(process):
        writer_pid = writer.info.backend_pid
        wait_until(gate.with_name("gate.reached").exists, process, "the first table's COPY")

        def refill_once() -> None:
            refill(writer, 1)
            writer_done.set()

        thread = threading.Thread(target=refill_once)
        thread.start()
        wait_until(
            lambda: writer_done.is_set() or waits_for_lock(live, writer_pid), process, "the refill to wait or end"
        )
        refilled_during_the_extract = writer_done.is_set()
        gate.touch()
        stderr = finish(process)
        thread.join(timeout=READER_WAIT)
    assert process.returncode == 0, stderr[-4000:]
    assert writer_done.is_set()  # the refill went ahead once the extract had ended

    rows = day_file(live, "z_refilled")
    assert len(rows) == ROWS
    assert {row.split(",")[1] for row in rows} == {"0"}  # the table as it was before the refill
    assert not refilled_during_the_extract  # the TRUNCATE waited for the extract's lock


def test_a_writer_refilling_and_rewriting_a_table_in_a_loop_never_gives_an_incomplete_day(live: Pipeline) -> None:
    """TRUNCATE and refill, and ALTER TABLE rewrites, run without pause during several runs; each day is whole."""
    stop = threading.Event()
    generations: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with live.connect(SOURCE) as conn:
                generation = 0
                while not stop.is_set():
                    generation += 1
                    refill(conn, generation)
                    persistence = "UNLOGGED" if generation % 2 else "LOGGED"  # each one rewrites the table
                    conn.execute(f"ALTER TABLE z_refilled SET {persistence}")
                    generations.append(generation)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(3):
            before = len(generations)
            live.run_ok(JOB, day=DAY)
            rows = day_file(live, "z_refilled")
            assert len(rows) == ROWS
            assert len({row.split(",")[1] for row in rows}) == 1  # one refill, whole
            assert len(generations) > before  # the writer did run during the job
    finally:
        stop.set()
        thread.join(timeout=READER_WAIT)
    assert errors == []


def test_a_table_locked_elsewhere_fails_the_job_transient_naming_the_table(live: Pipeline, tmp_path: Path) -> None:
    failure_file = tmp_path / "failures.jsonl"
    with live.connect(SOURCE) as holder, holder.transaction():
        holder.execute("LOCK TABLE z_refilled IN ACCESS EXCLUSIVE MODE")
        result = live.run(JOB, day=DAY, TAP_POSTGRES_LOCK_TIMEOUT="1s", PIPELINE_FAILURE_FILE=str(failure_file))

    assert result.returncode != 0
    [failure] = failures(failure_file)
    assert failure["transient"] is True
    assert failure["message"].startswith("table public.z_refilled: not locked within lock_timeout 1s")
    assert "TAP_POSTGRES_LOCK_TIMEOUT" in failure["message"]
    assert f"tap-postgres-native: {failure['message']}" in result.stderr
    assert receipt(live) is None


def test_a_statement_stuck_behind_a_lock_fails_in_bounded_time_transient(live: Pipeline, tmp_path: Path) -> None:
    """The lock timeout is long; the statement timeout ends the wait."""
    failure_file = tmp_path / "failures.jsonl"
    with live.connect(SOURCE) as holder, holder.transaction():
        holder.execute("LOCK TABLE z_refilled IN ACCESS EXCLUSIVE MODE")
        result = live.run(
            JOB,
            day=DAY,
            TAP_POSTGRES_LOCK_TIMEOUT="10min",
            TAP_POSTGRES_STATEMENT_TIMEOUT="1s",
            PIPELINE_FAILURE_FILE=str(failure_file),
        )

    assert result.returncode != 0
    [failure] = failures(failure_file)
    assert failure["transient"] is True
    assert failure["message"].startswith("table public.z_refilled: not locked within statement_timeout 1s")
    assert "TAP_POSTGRES_STATEMENT_TIMEOUT" in failure["message"]
    assert receipt(live) is None


def test_a_malformed_time_limit_is_refused_in_one_line_naming_the_setting(live: Pipeline, tmp_path: Path) -> None:
    failure_file = tmp_path / "failures.jsonl"

    result = live.run(JOB, day=DAY, TAP_POSTGRES_LOCK_TIMEOUT="soon", PIPELINE_FAILURE_FILE=str(failure_file))

    assert result.returncode != 0
    [failure] = failures(failure_file)
    assert failure["transient"] is False
    assert failure["message"].startswith("tap-postgres setting lock_timeout (TAP_POSTGRES_LOCK_TIMEOUT) or ")
    assert '"lock_timeout": "soon"' in failure["message"]


@pytest.mark.parametrize(
    "change", ["ALTER TABLE z_refilled ADD COLUMN added integer", "DROP TABLE z_refilled"], ids=["altered", "dropped"]
)
def test_a_table_changed_between_discovery_and_the_snapshot_fails_transient_naming_it(
    live: Pipeline, tmp_path: Path, change: str
) -> None:
    marker, failure_file = tmp_path / "paused", tmp_path / "failures.jsonl"
    process = start(
        live,
        **{PAUSE_AT_ENV: "source-snapshot", MARKER_ENV: str(marker), "PIPELINE_FAILURE_FILE": str(failure_file)},
    )
    with killed_on_failure(process):
        wait_until(marker.exists, process, "the pause between discovery and the locks")
        with live.connect(SOURCE) as conn:
            conn.execute(change)
        marker.unlink()
        stderr = finish(process)

    assert process.returncode != 0
    [failure] = failures(failure_file)
    assert failure["transient"] is True, stderr[-4000:]
    assert failure["message"].startswith("table public.z_refilled ")
    assert "run the job again" in failure["message"]
    assert receipt(live) is None


def test_a_refill_committed_before_the_locks_is_read_whole_as_the_snapshot_follows_them(
    live: Pipeline, tmp_path: Path
) -> None:
    """Between discovery and the locks the table is truncated and refilled: a snapshot taken before the
    locks (by ``SELECT set_config``, say) would read it as empty; the day holds the refill, whole."""
    marker = tmp_path / "paused"
    process = start(live, **{PAUSE_AT_ENV: "source-snapshot", MARKER_ENV: str(marker)})
    with killed_on_failure(process):
        wait_until(marker.exists, process, "the pause between discovery and the locks")
        with live.connect(SOURCE) as conn:
            refill(conn, 7)
        marker.unlink()
        stderr = finish(process)

    assert process.returncode == 0, stderr[-4000:]
    rows = day_file(live, "z_refilled")
    assert len(rows) == ROWS
    assert {row.split(",")[1] for row in rows} == {"7"}


SECRETS = """
CREATE TABLE secrets (id integer PRIMARY KEY, owner text);
INSERT INTO secrets SELECT i, 'user ' || i FROM generate_series(1, 50) AS i;
ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY first_ten ON secrets FOR SELECT USING (id <= 10);
"""


def test_a_table_that_row_level_security_filters_fails_naming_both_fixes(live: Pipeline, tmp_path: Path) -> None:
    """The reader would see 10 of 50 rows: the job fails instead; a policy letting it see every row fixes it."""
    failure_file = tmp_path / "failures.jsonl"
    reader = live.env["TAP_POSTGRES_USER"]
    with live.connect(SOURCE) as conn:
        conn.execute(SECRETS)

    result = live.run(JOB, day=DAY, PIPELINE_FAILURE_FILE=str(failure_file))

    assert result.returncode != 0
    [failure] = failures(failure_file)
    assert failure["transient"] is False
    message = failure["message"]
    assert message.startswith(f"table public.secrets: row-level security would hide rows from {reader}")
    assert f"CREATE POLICY ... ON public.secrets FOR SELECT TO {reader} USING (true)" in message
    assert 'TAP_POSTGRES_TABLES: {"public": {"secrets": {"selected": false}}}' in message
    assert receipt(live) is None

    with live.connect(SOURCE) as conn:
        conn.execute(f"CREATE POLICY everything ON secrets FOR SELECT TO {reader} USING (true)")
    live.run_ok(JOB, day=DAY)

    assert day_file(live, "secrets") == [f"{i},user {i}" for i in range(1, 51)]


def test_tables_left_out_or_skipped_are_named_in_the_log_and_the_receipt_and_absent_from_the_day(
    live: Pipeline,
) -> None:
    """Left out by the tables setting (a name with a dot and a hyphen too), a partition of another schema's
    table, a foreign table; a table the setting names that the source lacks is said too."""
    with live.connect(SOURCE) as conn:
        conn.execute(SECRETS)
        conn.execute('CREATE TABLE "a.b-c" (id integer); INSERT INTO "a.b-c" VALUES (1)')
        conn.execute('CREATE TABLE "a.b" (id integer); INSERT INTO "a.b" VALUES (2)')  # not left out
        conn.execute("CREATE SCHEMA archive")
        conn.execute("CREATE TABLE archive.events (id integer, at date) PARTITION BY RANGE (at)")
        conn.execute(
            "CREATE TABLE events_2024 PARTITION OF archive.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
        )
        conn.execute("INSERT INTO archive.events VALUES (1, '2024-06-01')")
        conn.execute("CREATE EXTENSION postgres_fdw")
        conn.execute("CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw")
        conn.execute("CREATE FOREIGN TABLE remote_orders (id integer) SERVER elsewhere")
    tables = {"public": {"secrets": {"selected": False}, "a.b-c": {"selected": False}, "gone": {"selected": False}}}

    results = [live.run(job, day=DAY, TAP_POSTGRES_TABLES=json.dumps(tables)) for job in JOBS]

    for job, result in zip(JOBS, results, strict=True):
        assert result.returncode == 0, f"{job}:\n{result.stderr[-4000:]}"
    log = results[0].stderr
    assert 'tap-postgres-native: table public.secrets left out: "selected": false in setting tables' in log
    assert 'tap-postgres-native: table public."a.b-c" left out: "selected": false in setting tables' in log
    assert (
        "tap-postgres-native: table public.events_2024 left out: a partition of archive.events, whose schema is "
        "not extracted; add that schema to filter_schemas to extract it with all its partitions"
    ) in log
    assert (
        "tap-postgres-native: table public.remote_orders left out: a foreign table (its rows live on another "
        "server); it is not extracted"
    ) in log
    assert (
        "tap-postgres-native: setting tables names table 'public'.'gone', which the selected schemas do not have" in log
    )
    assert [(t["source_schema"], t["table"]) for t in receipt(live)["left_out"]] == [
        ("public", "a.b-c"),
        ("public", "events_2024"),
        ("public", "remote_orders"),
        ("public", "secrets"),
    ]
    assert set(receipt(live)["tables"]) == {"a_first", "z_refilled", "a%2eb"}
    with live.connect(ANALYTICS) as conn:
        loaded = {
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'p'",
                (analytics_schema("postgres", "public"),),
            )
        }
    assert loaded == {"a_first", "z_refilled", "a.b"}


LATIN1_VALUES = ["Café", "naïve", "¿Qué?", "ÿ", "£ 5 ½", "", None]
LATIN1_SOURCE = """
CREATE TABLE "café" (id integer PRIMARY KEY, "prénom" text, label varchar(8));
"""


@pytest.fixture
def latin1(tmp_path: Path, source_files: dict[str, Path]) -> Iterator[Pipeline]:
    """Throwaway databases whose source is encoded in LATIN1."""
    dump = tmp_path / "latin1.sql"
    dump.write_text(LATIN1_SOURCE)
    yield from make_pipeline(tmp_path / "data", dump, source_files["order_details.csv"], source_encoding="LATIN1")


def test_a_latin1_source_arrives_exact_through_the_three_jobs(latin1: Pipeline) -> None:
    with latin1.connect(SOURCE) as conn:
        assert conn.execute("SHOW server_encoding").fetchone() == ("LATIN1",)
        for number, value in enumerate(LATIN1_VALUES):
            conn.execute('INSERT INTO "café" VALUES (%s, %s, %s)', (number, value, value))

    for job in JOBS:
        latin1.run_ok(job, day=DAY)

    file = latin1.data_dir / "postgres" / "caf%c3%a9" / DAY / "caf%c3%a9.csv"
    assert file.read_bytes().decode("utf-8").splitlines()[:2] == ["id,prénom,label", "0,Café,Café"]
    with latin1.connect(ANALYTICS) as conn:
        rows = conn.execute(
            psycopg.sql.SQL('SELECT "prénom", label FROM {} WHERE pipeline_date = %s ORDER BY id').format(
                psycopg.sql.Identifier(analytics_schema("postgres", "public"), "café")
            ),
            (DAY,),
        ).fetchall()
    assert rows == [(value, value) for value in LATIN1_VALUES]


# A SQL_ASCII database keeps whatever bytes it is given: here UTF-8 in one table, LATIN1 in the other.
SQL_ASCII_SOURCE = r"""
CREATE TABLE utf8_text (t text); INSERT INTO utf8_text VALUES (E'caf\xc3\xa9');
CREATE TABLE latin1_text (t text); INSERT INTO latin1_text VALUES (E'caf\xe9');
"""


def test_a_sql_ascii_source_whose_text_is_not_utf8_fails_naming_the_table(
    tmp_path: Path, source_files: dict[str, Path]
) -> None:
    dump, failure_file = tmp_path / "sql_ascii.sql", tmp_path / "failures.jsonl"
    dump.write_text(SQL_ASCII_SOURCE)
    for pipeline in make_pipeline(tmp_path / "data", dump, source_files["order_details.csv"], "SQL_ASCII"):
        result = pipeline.run(JOB, day=DAY, PIPELINE_FAILURE_FILE=str(failure_file))

        assert result.returncode != 0
        [failure] = failures(failure_file)
        assert failure["transient"] is False
        assert failure["message"].startswith(
            "reading table 'public.latin1_text' failed: invalid byte sequence for encoding \"UTF8\": 0xe9; "
        )
        assert "TAP_POSTGRES_TABLES" in failure["message"]
        assert receipt(pipeline) is None

        left_out = json.dumps({"public": {"latin1_text": {"selected": False}}})
        assert pipeline.run(JOB, day=DAY, TAP_POSTGRES_TABLES=left_out).returncode == 0
        assert day_file(pipeline, "utf8_text") == ["café"]
