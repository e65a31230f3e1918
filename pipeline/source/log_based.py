"""The names and checks LOG_BASED shares between set-up (``pipeline.setup.replication``) and the extractor.

No database driver here: tap-postgres-native (psycopg2) and the set-up (psycopg) both
import it.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.core.errors import PipelineError

SOURCE = "TAP_POSTGRES"
REPLICATION = f"{SOURCE}_REPLICATION"  # its _USER, _PASSWORD and _SLOT
SLOT_VARIABLE = f"{REPLICATION}_SLOT"
DEFAULT_SLOT = "northwind_pipeline"
TABLES_VARIABLE = f"{SOURCE}_TABLES"
LOG_BASED = "LOG_BASED"
STALE_DAYS_VARIABLE = "PIPELINE_SLOT_STALE_DAYS"
DEFAULT_STALE_DAYS = 2


def slot_name(env: Mapping[str, str]) -> str:
    """The slot's (and the publication's) name; a name the server would not take is refused here."""
    name = env.get(SLOT_VARIABLE) or DEFAULT_SLOT
    if not (name.isascii() and name.replace("_", "a").isalnum() and name == name.lower() and len(name) <= 63):
        raise PipelineError(f"{SLOT_VARIABLE}={name!r}: a slot name is lower-case letters, digits and _ (63 at most)")
    return name


# The columns a LOG_BASED table's day file adds before the table's own: the key's net
# operation in the day and the commit LSN of its last change (see the extractor's log_window).
# A version whose operation is DELETE_OP is gone from the state (pipeline.as_of).
OP_COLUMN = "_pipeline_op"
LSN_COLUMN = "_pipeline_lsn"
INSERT_OP, UPDATE_OP, DELETE_OP, SNAPSHOT_OP = "insert", "update", "delete", "snapshot"


def wal_level_problem(level: str, where: str) -> str | None:
    """One line when a server of ``level`` cannot decode logically, with what to set; None when it can."""
    if level == "logical":
        return None
    return (
        f"{where} has wal_level={level}; LOG_BASED tables ({TABLES_VARIABLE}) need wal_level=logical: "
        "ALTER SYSTEM SET wal_level = logical (or postgresql.conf), then restart the server"
    )


def stale_days(env: Mapping[str, str]) -> int:
    """``PIPELINE_SLOT_STALE_DAYS``: a whole number of at least 1 (default 2)."""
    text = env.get(STALE_DAYS_VARIABLE) or str(DEFAULT_STALE_DAYS)
    if not text.isdigit() or int(text) < 1:
        raise PipelineError(f"{STALE_DAYS_VARIABLE}={text!r}: expected a whole number of days, at least 1")
    return int(text)
