"""The peers on the bench's own data, in the same run: Sling, dlt and the stock MeltanoLabs path.

Each hop is the one of ours it is set beside (:mod:`bench.report` pairs them):

- ``day``: a Northwind day's tables to CSV files and those files plus the CSV source
  ``order_details`` into keyed tables (Sling, dlt; the stock path's cost there is
  start-up, as ours);
- ``extract``: the scaled source's tables to CSV files (Sling, dlt), and the stock path
  on its capped copy (:mod:`bench.stock_peer`);
- ``load``: those files plus the scaled CSV into keyed tables (Sling, dlt), and the
  stock path's RECORD messages into target-postgres.

The venvs are installed before anything is timed (:func:`install`), so a first run
pays the download outside the figures.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from bench import dlt_peer, sling_peer, stock_peer
from bench.memory import Timing
from bench.peer_io import CSV_KEYS, hop, loaded_rows, table_keys
from bench.peer_venvs import PINS, peer_venv
from bench.source import csv_rows, source_rows

# The peers that move whole tables; each module has extract(), load() and drop_schema().
FILE_PEERS: dict[str, ModuleType] = {"sling": sling_peer, "dlt": dlt_peer}


def install() -> None:
    """Every peer's venv, built now when missing (a failure stops the bench with one line)."""
    for name in PINS:
        peer_venv(name)


def _both_hops(
    module: ModuleType, env: dict[str, str], tables: list[str], csv: Path, folder: Path, logs: Path, label: str
) -> tuple[Timing, Timing]:
    """One peer's extract of ``tables`` and load of those files plus ``csv``; (extract, load).

    The rows it loaded are counted and must be the source's: a peer that skipped rows
    (or a table: Sling skips empty ones, which then have no rows to miss) would look fast.
    """
    files, extract = module.extract(env, tables, folder / "extract", logs / f"{module.PEER}-{label}-extract.log")
    keys = {**table_keys(env, tables), **CSV_KEYS}
    files = {**files, "order_details": [csv]}
    load = module.load(env, files, keys, folder, logs / f"{module.PEER}-{label}-load.log")
    loaded, expected = loaded_rows(env, module.SCHEMA, list(files)), source_rows(env, tables) + csv_rows(csv)
    if loaded != expected:
        sys.exit(f"bench: {module.PEER} loaded {loaded} rows where the source has {expected}; see {logs}")
    module.drop_schema(env)
    shutil.rmtree(folder)
    return extract, load


def day(env: dict[str, str], tables: list[str], csv: Path, folder: Path, logs: Path) -> list[dict[str, Any]]:
    """Each file peer's Northwind day: ``[{"peer", "seconds", "peak_rss_mb", "largest_process"}, ...]``."""
    figures = []
    for name, module in FILE_PEERS.items():
        extract, load = _both_hops(module, env, tables, csv, folder / name, logs, "day")
        figures.append(
            {
                "peer": name,
                "seconds": round(extract.seconds + load.seconds, 2),
                "peak_rss_mb": max(extract.peak_rss_mb, load.peak_rss_mb),
                "largest_process": max(extract, load, key=lambda timing: timing.peak_rss_mb).largest,
            }
        )
    return figures


def scaled(
    env: dict[str, str],
    tables: list[str],
    table_rows: int,
    csv: Path,
    csv_rows: int,
    stock_rows: int,
    folder: Path,
    logs: Path,
) -> list[dict[str, Any]]:
    """Every peer's extract and load of the scaled source, then the stock path on ``stock_rows`` rows."""
    figures = []
    for name, module in FILE_PEERS.items():
        extract, load = _both_hops(module, env, tables, csv, folder / name, logs, "scaled")
        figures += [hop(name, "extract", table_rows, extract), hop(name, "load", table_rows + csv_rows, load)]
    figures += stock_peer.stock_hops(env, stock_rows, folder / "stock", logs)
    return figures
