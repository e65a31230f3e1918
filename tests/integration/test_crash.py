"""Each job killed with SIGKILL where a crash could leave a day half-done, then rerun at once.

A job is stopped exactly at a point with the test-only pause (``pipeline.core.crashpoints``)
and killed: with all its processes (its session: Meltano, the plugins and the lock's
keeper), or its ``meltano`` process alone (its plugins go on as orphans). After each
kill, step 1 leaves the previous complete day or no receipt, and the analytics day
and the exported result are the old ones or the new ones, never a mix. The step-1 kills
also run with ``DATA_DIR`` in a bucket of the tests' S3 server (SeaweedFS,
``tests.s3server``), where a publish never removes the receipt, so the previous one is
the only possible outcome (step 2 on S3: ``test_s3_step2_crash.py``). Then the plain
``meltano run <job>`` reruns it at once (Meltano's own guard must not refuse it, with
its system database in SQLite or in Postgres as workers on several hosts share it)
and the day is checked against the sources. Two runs of the same job and day never
overlap: the later one is refused with one clear line that Airflow retries.

The tests share one pipeline (on local disk; the S3 cases one of their own) and build
on its day, in order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg import sql

from pipeline.core.connections import ADMIN, ANALYTICS, SOURCE
from pipeline.core.crashpoints import MARKER_ENV, PAUSE_AT_ENV
from pipeline.days.history import history_root, kept_versions
from pipeline.days.layout import receipt_path
from pipeline.days.receipts import read_day
from pipeline.setup.databases import drop_database, ensure_database
from pipeline.warehouse.results import result_files
from tests.analytics.days import as_date
from tests.conftest import PROJECT_ROOT, Pipeline
from tests.integration.test_daily_pipeline import RESULT_NAMES, expected_result, source_tables

pytestmark = pytest.mark.integration

DAY, OTHER_DAY = "2024-03-01", "2024-03-02"
SESSION, MELTANO_ONLY = "session", "meltano alone"
REACH_TIMEOUT = 300  # seconds for a job to reach its pause point, however loaded the machine


@dataclasses.dataclass
class PausedRun:
    """A ``meltano run`` in a session of its own, waiting at a pause point."""

    job: str
    process: subprocess.Popen[bytes]
    marker: Path
    log: Path

    def kill(self, how: str) -> None:
        """SIGKILL the whole session, or Meltano alone and let its orphaned plugins go on."""
        if how == SESSION:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        else:
            self.process.kill()
            self.process.wait()
            self.marker.unlink()

    def reap(self) -> None:
        """Whatever is left of the run's session (orphans): killed, so no test leaves a process behind."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def start_paused(pipeline: Pipeline, job: str, point: str, folder: Path, **overrides: str) -> PausedRun:
    """Start ``meltano run job`` for DAY and return once it waits at ``point``."""
    folder.mkdir(parents=True, exist_ok=True)
    marker, log = folder / f"{job}.{point}.paused", folder / f"{job}.{point}.log"
    env = {**pipeline.env, **overrides, "PIPELINE_DATE": DAY, PAUSE_AT_ENV: point, MARKER_ENV: str(marker)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(PROJECT_ROOT / ".venv" / "bin" / "meltano"), "run", job],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    run = PausedRun(job, process, marker, log)
    deadline = time.monotonic() + REACH_TIMEOUT
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            run.reap()
            pytest.fail(f"{job} did not reach {point}:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)
    return run


@pytest.fixture
def paused() -> Iterator[list[PausedRun]]:
    """The paused runs a test starts; whatever is left of them is killed afterwards."""
    runs: list[PausedRun] = []
    yield runs
    for run in runs:
        run.reap()


def rerun(pipeline: Pipeline, job: str, **overrides: str) -> None:
    """The plain documented command, at once."""
    result = pipeline.run(job, day=DAY, **overrides)
    if result.returncode != 0:
        pytest.fail(f"the rerun of {job} failed:\n{result.stderr[-6000:]}")


def receipt(pipeline: Pipeline, job: str) -> dict | None:
    """The job's receipt for DAY, after checking that every folder it lists is complete and matches it."""
    path = receipt_path(pipeline.data_dir, job, as_date(DAY))
    if not path.is_file():
        return None
    read_day(pipeline.data_dir, as_date(DAY), [job])
    return json.loads(path.read_text())


def analytics_day(pipeline: Pipeline) -> dict[str, str]:
    """Each source table's rows of DAY in the analytics database, as an md5.

    Only the source tables: the project's own schema ``pipeline`` (bookkeeping with load ids
    and times) and its load schemas ``pipeline_*`` differ between two runs of the same day.
    """
    with pipeline.connect(ANALYTICS) as conn:
        tables = conn.execute(
            """
            SELECT n.nspname, c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'pipeline_date' AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname <> 'pipeline' AND n.nspname NOT LIKE 'pipeline\\_%'
            ORDER BY 1, 2
            """
        ).fetchall()
        return {
            f"{schema}.{table}": conn.execute(
                sql.SQL(
                    "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {}.{} t WHERE pipeline_date = %s"
                ).format(sql.Identifier(schema), sql.Identifier(table)),
                (DAY,),
            ).fetchone()[0]
            for schema, table in tables
        }


def exported(pipeline: Pipeline) -> dict[str, str] | None:
    """The day's published result files (name -> sha256), as a reader finds them; None when there is none."""
    files = result_files(pipeline.data_dir, as_date(DAY), RESULT_NAMES)
    if files is None:
        return None
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()}


def step2_state(pipeline: Pipeline) -> tuple[dict[str, str], dict[str, str] | None]:
    return analytics_day(pipeline), exported(pipeline)


@dataclasses.dataclass
class Sources:
    """The CSV source in two versions, so that a rerun's day differs from the day before it.

    ``published`` is the version step 1's csv-to-lfs day was made from, ``loaded`` the
    one the analytics day was made from.
    """

    full: Path
    shorter: Path
    published: Path
    loaded: Path

    def other_than(self, version: Path) -> Path:
        return self.shorter if version == self.full else self.full


def first_day(pipeline: Pipeline, jobs: tuple[str, ...], tmp_path_factory: pytest.TempPathFactory) -> Sources:
    """Run ``jobs`` for DAY with the full CSV source; a shorter copy of it makes the reruns' days differ."""
    full = Path(pipeline.env["ORDER_DETAILS_CSV"])
    shorter = tmp_path_factory.mktemp("sources") / "order_details.csv"
    shorter.write_text("".join(full.read_text().splitlines(keepends=True)[:-100]))
    for job in jobs:
        pipeline.run_ok(job, day=DAY)
    return Sources(full=full, shorter=shorter, published=full, loaded=full)


@pytest.fixture(scope="module")
def sources(shared_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Sources:
    """The first complete day of all three jobs, with the full CSV source."""
    return first_day(shared_pipeline, ("postgres-to-lfs", "csv-to-lfs", "lfs-to-analytics"), tmp_path_factory)


@pytest.fixture(scope="module")
def s3_sources(s3_shared_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Sources:
    """The first complete step-1 day in the bucket, with the full CSV source."""
    return first_day(s3_shared_pipeline, ("postgres-to-lfs", "csv-to-lfs"), tmp_path_factory)


def check_step1_day(pipeline: Pipeline, job: str, sources: Sources) -> None:
    """The published day has every table of the source with its rows."""
    published = {table.table: table.rows for table in read_day(pipeline.data_dir, as_date(DAY), [job])}
    if job == "csv-to-lfs":
        assert published == {"order_details": len(sources.published.read_text().splitlines()) - 1}
        return
    with pipeline.connect(SOURCE) as conn:
        expected = {
            table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
            for table in source_tables(pipeline)
        }
    assert published == expected


def check_step2_day(pipeline: Pipeline, sources: Sources) -> None:
    """The exported result is the join computed from the sources, and the analytics view has it too."""
    files = result_files(pipeline.data_dir, as_date(DAY), RESULT_NAMES)
    assert files is not None, "no result"
    rows = json.loads(files["orders_with_details.json"].read_text())
    assert rows == expected_result(pipeline, sources.loaded, DAY)
    with pipeline.connect(ANALYTICS) as conn:
        (view,) = conn.execute(
            "SELECT coalesce(to_regclass('pipeline.orders_with_details'), to_regclass('public.orders_with_details'))"
        ).fetchone()
        in_view = conn.execute(f"SELECT count(*) FROM {view} WHERE pipeline_date = %s", (DAY,)).fetchone()[0]
    assert in_view == len(rows)


STEP1_CRASHES = [
    ("postgres-to-lfs", "day-file", SESSION),
    ("csv-to-lfs", "day-file", SESSION),
    ("postgres-to-lfs", "extract", SESSION),
    ("postgres-to-lfs", "before-publish", SESSION),
    ("postgres-to-lfs", "publish-swap", SESSION),
    ("csv-to-lfs", "publish-swap", SESSION),
    ("postgres-to-lfs", "extract", MELTANO_ONLY),
]


@dataclasses.dataclass(frozen=True)
class Backend:
    """Where the step-1 kills' DATA_DIR is: its pipeline's and first day's fixtures, and what a kill may leave."""

    pipeline: str
    sources: str
    # A killed step-1 run leaves the previous receipt or, on local disk only, none (killed
    # between the publish's folder swaps); on S3 a publish never removes the receipt.
    may_leave_no_receipt: bool


BACKENDS = {
    "local": Backend("shared_pipeline", "sources", may_leave_no_receipt=True),
    "s3": Backend("s3_shared_pipeline", "s3_sources", may_leave_no_receipt=False),
}


@pytest.mark.parametrize(
    ("backend", "job", "point", "how"), [(backend, *crash) for backend in BACKENDS for crash in STEP1_CRASHES]
)
def test_a_killed_step1_job_leaves_the_previous_day_or_no_receipt_and_reruns_at_once(
    request: pytest.FixtureRequest,
    paused: list[PausedRun],
    tmp_path: Path,
    backend: str,
    job: str,
    point: str,
    how: str,
) -> None:
    where = BACKENDS[backend]
    pipeline: Pipeline = request.getfixturevalue(where.pipeline)
    sources: Sources = request.getfixturevalue(where.sources)
    before = receipt(pipeline, job)
    assert before is not None
    version = sources.other_than(sources.published)
    overrides = {"ORDER_DETAILS_CSV": str(version)} if job == "csv-to-lfs" else {}
    run = start_paused(pipeline, job, point, tmp_path, **overrides)
    paused.append(run)

    run.kill(how)

    assert receipt(pipeline, job) in ((None, before) if where.may_leave_no_receipt else (before,))
    if overrides:
        sources.published = version
    # An orphan still writing holds the writer lock: the rerun waits for it to finish.
    wait = {"PIPELINE_LOCK_WAIT_SECONDS": "300"} if how == MELTANO_ONLY else {}
    rerun(pipeline, job, **overrides, **wait)
    check_step1_day(pipeline, job, sources)


STEP2_CRASHES = [
    ("extract", SESSION),
    ("before-publish", SESSION),
    ("analytics-publish", SESSION),
    ("export-before-swap", SESSION),
    ("analytics-publish", MELTANO_ONLY),
]


@pytest.mark.parametrize(("point", "how"), STEP2_CRASHES)
def test_a_killed_step2_job_leaves_the_old_or_the_new_day_and_reruns_at_once(
    shared_pipeline: Pipeline, sources: Sources, paused: list[PausedRun], tmp_path: Path, point: str, how: str
) -> None:
    kill_step2_and_rerun(shared_pipeline, sources, paused, tmp_path, point, how)


def kill_step2_and_rerun(
    pipeline: Pipeline, sources: Sources, paused: list[PausedRun], tmp_path: Path, point: str, how: str
) -> None:
    """Kill step 2 at ``point`` (``how``), check it left the old or the new day, rerun it, check the new day."""
    # A different CSV source than the day in the analytics database was loaded from: new != old.
    version = sources.other_than(sources.loaded)
    result = pipeline.run("csv-to-lfs", day=DAY, ORDER_DETAILS_CSV=str(version))
    assert result.returncode == 0, result.stderr[-4000:]
    sources.published = version
    old = step2_state(pipeline)
    run = start_paused(pipeline, "lfs-to-analytics", point, tmp_path)
    paused.append(run)

    run.kill(how)
    after_kill = step2_state(pipeline)
    wait = {"PIPELINE_LOCK_WAIT_SECONDS": "300"} if how == MELTANO_ONLY else {}
    rerun(pipeline, "lfs-to-analytics", **wait)
    sources.loaded = version
    new = step2_state(pipeline)

    assert old != new
    assert after_kill[0] in (old[0], new[0]), "the analytics day is a mix of two runs"
    assert after_kill[1] in (old[1], new[1]), "the exported result is a mix of two runs"
    check_step2_day(pipeline, sources)


def test_two_runs_of_a_job_and_day_never_overlap_and_other_days_run_beside(
    shared_pipeline: Pipeline, sources: Sources, paused: list[PausedRun], tmp_path: Path
) -> None:
    pipeline = shared_pipeline
    first = start_paused(pipeline, "csv-to-lfs", "before-publish", tmp_path)
    paused.append(first)
    failures = tmp_path / "failures.jsonl"

    second = pipeline.run("csv-to-lfs", day=DAY, PIPELINE_FAILURE_FILE=str(failures), PIPELINE_LOCK_WAIT_SECONDS="1")
    other_day = pipeline.run("csv-to-lfs", day=OTHER_DAY)

    assert second.returncode != 0
    (record,) = [json.loads(line) for line in failures.read_text().splitlines()]
    assert record["transient"] is True
    assert record["message"].startswith(
        f"refused: csv-to-lfs for {DAY} is already running (process {first.process.pid} "
    )
    assert f"PIPELINE_DATE={DAY} .venv/bin/meltano run csv-to-lfs" in record["message"]
    assert record["message"] in second.stderr
    assert "Writing order_details" not in second.stderr  # refused before its loader started
    assert other_day.returncode == 0, other_day.stderr[-4000:]

    first.marker.unlink()  # the first run goes on and publishes its day
    assert first.process.wait(timeout=REACH_TIMEOUT) == 0, first.log.read_text()[-4000:]
    sources.published = sources.full
    check_step1_day(pipeline, "csv-to-lfs", sources)


@pytest.fixture
def postgres_system_database(shared_pipeline: Pipeline) -> Iterator[str]:
    """Meltano's system database in Postgres, as workers on several hosts share it (a throwaway one)."""
    env = {**shared_pipeline.env, "TARGET_POSTGRES_DATABASE": f"test_meltano_{uuid.uuid4().hex[:10]}"}
    ensure_database(ANALYTICS, env)
    try:
        # Meltano's system database belongs to an account of its own (in Docker, the Airflow
        # database's owner); here the administrator, who owns the throwaway database.
        user, password = quote(env[f"{ADMIN}_USER"]), quote(env.get(f"{ADMIN}_PASSWORD", ""))
        host, port, name = env["TARGET_POSTGRES_HOST"], env["TARGET_POSTGRES_PORT"], env["TARGET_POSTGRES_DATABASE"]
        yield f"postgresql+psycopg://{user}:{password}@{host}:{port}/{name}"
    finally:
        drop_database(ANALYTICS, env)


def test_a_killed_run_recorded_in_a_postgres_system_database_does_not_block_its_rerun(
    shared_pipeline: Pipeline, sources: Sources, paused: list[PausedRun], tmp_path: Path, postgres_system_database: str
) -> None:
    system = {"MELTANO_DATABASE_URI": postgres_system_database}
    run = start_paused(shared_pipeline, "csv-to-lfs", "extract", tmp_path, **system)
    paused.append(run)

    run.kill(SESSION)

    rerun(shared_pipeline, "csv-to-lfs", **system)
    sources.published = sources.full
    check_step1_day(shared_pipeline, "csv-to-lfs", sources)


def folder_bytes(pipeline: Pipeline, folders: dict[str, object]) -> dict[str, list[bytes]]:
    """The files of each of ``folders`` (relative to the data dir), byte for byte."""
    return {
        relative: sorted(path.read_bytes() for path in (pipeline.data_dir / relative).iterdir()) for relative in folders
    }


def test_a_publish_killed_while_keeping_the_replaced_version_loses_nothing(
    shared_pipeline: Pipeline, sources: Sources, paused: list[PausedRun], tmp_path: Path
) -> None:
    pipeline, job = shared_pipeline, "postgres-to-lfs"
    before = receipt(pipeline, job)
    assert before is not None
    files_before = folder_bytes(pipeline, before["folders"])
    run = start_paused(pipeline, job, "history-move", tmp_path)
    paused.append(run)

    run.kill(SESSION)

    # Half moved: the receipt and one folder kept, the other folders still in place; no receipt published.
    assert receipt(pipeline, job) is None
    (version,) = kept_versions(pipeline.data_dir, job, as_date(DAY))
    kept = history_root(pipeline.data_dir, job, as_date(DAY)) / version
    assert len([relative for relative in before["folders"] if (kept / relative).is_dir()]) == 1 < len(files_before)
    # Restore makes the replaced version whole and published again, byte for byte...
    result = pipeline.invoke("restore", "--job", job, "--date", DAY)
    assert result.returncode == 0, result.stderr[-4000:]
    assert receipt(pipeline, job) == before
    assert folder_bytes(pipeline, before["folders"]) == files_before
    # ... and a rerun killed the same way then rerun publishes the day, keeping no copy of an identical one.
    run = start_paused(pipeline, job, "history-move", tmp_path / "again")
    paused.append(run)
    run.kill(SESSION)
    rerun(pipeline, job)
    check_step1_day(pipeline, job, sources)
    assert kept_versions(pipeline.data_dir, job, as_date(DAY)) == []
    assert not history_root(pipeline.data_dir, job, as_date(DAY)).exists()
