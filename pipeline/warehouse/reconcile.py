"""The day's load against the step-1 receipts: exactly their files, row for row."""

from __future__ import annotations

import datetime as dt

from pipeline.core.commands import rerun_command
from pipeline.core.errors import PipelineError, TransientPipelineError
from pipeline.core.names import analytics_schema
from pipeline.days.folder import TableFile
from pipeline.jobs import STEP2_JOB
from pipeline.warehouse.bookkeeping import LoadedTable


def reconcile(day: dt.date, loaded: list[LoadedTable], receipts: list[TableFile]) -> None:
    """Refuse the day unless the load is exactly the receipts' files, row for row.

    Other files than the receipts list (a table more or less, another checksum) mean
    that step 1 published the day again after this load read it: a rerun of step 2
    loads the new files, so that refusal is transient. A row count that differs from
    the manifest's for the very file is damage: permanent.
    """
    by_file = {(table.source, table.file_key): table for table in loaded}
    raced, damaged = [], []
    for expected in receipts:
        label = f"{analytics_schema(expected.source, expected.source_schema)!r}.{expected.table!r}"
        table = by_file.pop((expected.source, expected.key), None)
        if table is None:
            raced.append(f"table {label} is in the step-1 receipts but was not loaded")
        elif table.file_sha256 != expected.sha256:
            raced.append(f"table {label} was loaded from another file than the receipt lists now")
        elif table.loaded_rows != expected.rows:
            damaged.append(f"table {label}: loaded {table.loaded_rows} rows, its manifest says {expected.rows}")
    raced += [f"table {table.label} was loaded but is not in the step-1 receipts" for table in by_file.values()]
    if problems := damaged + raced:
        message = f"refused to publish {day}: {'; '.join(problems)}; rerun: {rerun_command(STEP2_JOB, day)}"
        raise (PipelineError if damaged else TransientPipelineError)(message)
