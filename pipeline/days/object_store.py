"""Step 1's commit protocol in an object store (``DATA_DIR=s3://...``): immutable objects, the receipt last.

An object store has no rename, so the local protocol (a staging tree moved into place)
cannot be had; and it need not be: readers trust only receipts. So a run writes each
object once, at its final key, under a folder of its own inside the day folder::

    postgres/{key}/{date}/{run}/{key}.csv, _schema.json, _manifest.json, _SUCCESS
    csv/{date}/{run}/...
    .staging/{job}/{date}/{run}.json     the run's note: begun (no folders yet), then the
                                         folders it wrote and the tables it left out
    _runs/{job}/{date}.json              the receipt: every table's folder (run folder
                                         included) and sha256; the commit point
    _history/{job}/{date}/{version}/receipt.json   a replaced receipt (its objects stay)

``{run}`` is ``pipeline.core.run_owner.run_owner().token``, the same in every process of one
``meltano run`` (claim, tap, target, publish). The publish writes the receipt last,
after the fencing check, with a conditional put: ``If-None-Match: *`` for a first
publish, ``If-Match`` on the ETag it read for a replace, so that two writers that
both passed their check (a lost lock noticed late) cannot both commit. A replaced
receipt is first kept in the history; its objects stay where they are, so a restore
only puts a kept receipt back. When every sha256 of the run equals the current
receipt's (an identical rerun), the run's objects are deleted and the receipt is left
as it is: identical objects, identical receipt.

Crash safety: until the receipt's put, nothing a reader trusts has changed; after it,
the day is the new one. What a killed run leaves (run folders named by no receipt,
its note, a kept receipt identical to the current one) is never read, and is removed
by the next publish of the day or by ``pipeline prune`` (``sweep``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pipeline.core.commands import rerun_command
from pipeline.core.crashpoints import pause_point
from pipeline.core.errors import PipelineError, TransientPipelineError
from pipeline.core.files import dump_json, read_json
from pipeline.core.run_owner import run_owner
from pipeline.core.store import ConflictError, put_if_absent, put_if_match, read_versioned, remove_tree
from pipeline.days.bookmarks import add_windows
from pipeline.days.folder import describe_folders
from pipeline.days.history import RECEIPT_FILE, folders_of, history_root, kept_versions, matches, new_version, same_day
from pipeline.days.layout import receipt_path, staging_root


def run_note(data_dir: Path, job: str, day: dt.date, run: str) -> Path:
    """The note of run ``run`` of ``job`` for ``day``: it began, then which folders it wrote."""
    return staging_root(data_dir, job, day) / f"{run}.json"


def begin_run(data_dir: Path, job: str, day: dt.date, run: str) -> None:
    """Say that ``run`` writes ``day`` from now on, before its first object (so ``sweep`` finds what it leaves)."""
    run_note(data_dir, job, day, run).write_text(dump_json({"run": run, "folders": None}), encoding="utf-8")


def finish_run(
    data_dir: Path, job: str, day: dt.date, run: str, folders: Iterable[str], left_out: Any, bookmarks: Any
) -> None:
    """Record what ``run`` wrote: its complete day folders (relative to the data root), tables left out, windows.

    The windows are the incremental tables' (``pipeline.days.bookmarks``), which the publish writes into the receipt.
    """
    note = {"run": run, "folders": sorted(folders), "left_out": left_out, "bookmarks": bookmarks}
    run_note(data_dir, job, day, run).write_text(dump_json(note), encoding="utf-8")


def _parse(read: tuple[bytes, str] | None) -> dict[str, Any] | None:
    return None if read is None else json.loads(read[0])


def publish(data_dir: Path, job: str, day: dt.date, check: Callable[[], None]) -> dict[str, Any]:
    """Commit this run's day by its receipt (see the module's docstring); returns the receipt now published."""
    run = run_owner().token
    note_path = run_note(data_dir, job, day, run)
    note = read_json(note_path) if note_path.exists() else None
    if note is None or note.get("folders") is None:
        raise PipelineError(
            f"{job} has nothing staged for {day} by this run (no complete {note_path}): run the whole job: "
            f"{rerun_command(job, day)}"
        )
    checksums, tables = describe_folders(job, day, [(rel, data_dir / rel) for rel in note["folders"]])
    add_windows(tables, note.get("bookmarks") or {})
    content = {
        "job": job,
        "date": day.isoformat(),
        "folders": checksums,
        "tables": tables,
        "left_out": note.get("left_out") or [],
    }
    receipt = receipt_path(data_dir, job, day)
    current = read_versioned(receipt)
    published = _parse(current)
    if published is not None and same_day(published, content):
        pause_point("publish-swap")  # a kill here leaves the run's objects, which no receipt names
        check()
        _remove_folders(data_dir, note["folders"], _named(data_dir, job, day, published))
        note_path.unlink()
        return published
    if current is not None:
        keep(data_dir, job, day, current[0], check)
    pause_point("publish-swap")  # a kill here leaves a kept copy of the receipt still published
    check()
    commit_receipt(receipt, dump_json(content).encode(), current, job, day)
    drop_identical(data_dir, job, day, content)
    note_path.unlink()
    return content


def commit_receipt(receipt: Path, data: bytes, current: tuple[bytes, str] | None, job: str, day: dt.date) -> None:
    """Put the receipt: only over the version read (or only where there was none)."""
    try:
        if current is None:
            put_if_absent(receipt, data)
        else:
            put_if_match(receipt, data, current[1])
    except ConflictError as exc:
        raise TransientPipelineError(
            f"{receipt} changed while {job} published {day} (another run published it meanwhile); "
            f"this run changed nothing; rerun: {rerun_command(job, day)}"
        ) from exc


def keep(data_dir: Path, job: str, day: dt.date, receipt_bytes: bytes, check: Callable[[], None]) -> str:
    """Keep a receipt about to be replaced in the day's history; returns its version (its objects stay in place).

    A receipt already kept (a publish killed after keeping it) is not kept twice.
    """
    root = history_root(data_dir, job, day)
    for name in reversed(kept_versions(data_dir, job, day)):
        if (root / name / RECEIPT_FILE).read_bytes() == receipt_bytes:
            return name
    version = new_version(root, receipt_path(data_dir, job, day))
    check()
    try:
        put_if_absent(version / RECEIPT_FILE, receipt_bytes)
    except ConflictError as exc:
        raise TransientPipelineError(f"{version} was written meanwhile by another run; retry") from exc
    return version.name


def _named(data_dir: Path, job: str, day: dt.date, *also: dict[str, Any]) -> set[str]:
    """Every folder that the day's receipt, its kept receipts or ``also`` name: what must stay."""
    named: set[str] = set()
    for content in also:
        named |= set(folders_of(content))
    if (published := _parse(read_versioned(receipt_path(data_dir, job, day)))) is not None:
        named |= set(folders_of(published))
    root = history_root(data_dir, job, day)
    for name in kept_versions(data_dir, job, day):
        named |= set(folders_of(read_json(root / name / RECEIPT_FILE)))
    return named


def _remove_folders(data_dir: Path, folders: Iterable[str], keep_these: set[str]) -> int:
    """Remove the run folders ``folders`` but those in ``keep_these``; returns how many went."""
    removed = 0
    for relative in sorted(set(folders) - keep_these):
        remove_tree(data_dir / relative)
        removed += 1
    return removed


def drop_identical(data_dir: Path, job: str, day: dt.date, published: dict[str, Any]) -> None:
    """Drop every kept version that is the ``published`` day over again, with its objects no receipt still names."""
    root = history_root(data_dir, job, day)
    for name in kept_versions(data_dir, job, day):
        kept = read_json(root / name / RECEIPT_FILE)
        if same_day(kept, published):
            (root / name / RECEIPT_FILE).unlink()
            _remove_folders(data_dir, folders_of(kept), _named(data_dir, job, day, published))


def restore(data_dir: Path, job: str, day: dt.date, name: str, check: Callable[[], None]) -> Path | None:
    """Put the kept receipt ``name`` back as the day's receipt; the one it replaces is kept in turn (returned)."""
    kept_path = history_root(data_dir, job, day) / name / RECEIPT_FILE
    kept_bytes = kept_path.read_bytes()
    content = json.loads(kept_bytes)
    if missing := [
        rel for rel, expected in sorted(folders_of(content).items()) if not matches(data_dir / rel, expected)
    ]:
        raise PipelineError(f"{kept_path.parent} cannot be restored: {', '.join(missing)} missing or changed")
    receipt = receipt_path(data_dir, job, day)
    current = read_versioned(receipt)
    replaced = None
    if current is not None:
        replaced = history_root(data_dir, job, day) / keep(data_dir, job, day, current[0], check)
    check()
    commit_receipt(receipt, kept_bytes, current, job, day)
    kept_path.unlink()  # its objects now belong to the day's receipt
    return replaced


def sweep(data_dir: Path, job: str, day: dt.date, parents: Iterable[str], check: Callable[[], None]) -> int:
    """Remove what runs of ``job`` that never published ``day`` left: their run folders and notes.

    Only while the day's locks are held (no run of the job can be writing). A run
    folder that a receipt, current or kept, names is never removed. Returns how many
    folders went.
    """
    staging = staging_root(data_dir, job, day)
    if not staging.exists():
        return 0
    notes = [p for p in staging.iterdir() if p.name.endswith(".json")]
    named = _named(data_dir, job, day)
    removed = 0
    iso = day.isoformat()
    for note in notes:
        run = note.name.removesuffix(".json")
        leftovers = [
            str(folder).removeprefix(f"{data_dir}/")
            for parent in parents
            for folder in data_dir.glob(f"{parent}/{iso}/{run}")
        ]
        check()
        removed += _remove_folders(data_dir, leftovers, named)
        note.unlink()
    return removed
