"""The exceptions the pipeline raises for bad input or a refused step, and how they are reported.

Their message is a single line meant for a person: it names the file, table or
setting at fault and, where there is one, the command that fixes it.

``meltano run`` exits 1 whatever failed, so an orchestrator cannot tell a failure
worth retrying from one that will fail again. Every component therefore reports
its failure through ``report_failure``, which also appends it, with its class, to
the file named by ``PIPELINE_FAILURE_FILE`` when that is set (one JSON object per
line); whoever runs the job reads the file afterwards.
"""

import json
import os
import re
import sys
from collections.abc import Callable

FAILURE_FILE_ENV = "PIPELINE_FAILURE_FILE"
# What a server answers a login whose settings are wrong (a retry meets it again), as
# opposed to a server that is down, starting, restarting or full.
_BAD_LOGIN = re.compile(
    r"does not exist|authentication failed|no password supplied|no pg_hba\.conf entry|permission denied"
)


class PipelineError(Exception):
    """A clear, one-line failure of a pipeline step that a retry would meet again (bad input, a refusal)."""


class TransientPipelineError(PipelineError):
    """A failure that a later retry may not meet: a database that is down, a lock held by another run."""


def first_text_line(text: str, fallback: str) -> str:
    """The first line of ``text`` that has anything on it (``fallback`` when none has): a message in one line."""
    lines = text.strip().splitlines()
    return lines[0] if lines else fallback


def first_line(exc: BaseException) -> str:
    """The exception's message as one line (its type's name when it has none)."""
    return first_text_line(str(exc), type(exc).__name__)


def connection_failure(message: str) -> PipelineError:
    """A failed connection's ``message`` as the class it deserves: a wrong setting permanent, all else transient.

    A refused or lost connection, a server starting up or shutting down, too many
    clients: a retry may pass. A role or database that does not exist, a wrong
    password, no access: fix the setting first. By the server's words, whatever the
    driver (psycopg, psycopg2), so every plugin classes them alike.
    """
    return (PipelineError if _BAD_LOGIN.search(message) else TransientPipelineError)(message)


def as_pipeline_error(exc: BaseException) -> PipelineError | None:
    """``exc`` as the failure to report; None for an unexpected one (a bug: its traceback is the report).

    A ``PipelineError`` is itself; a failed connection is classed by ``connection_failure``,
    an object store's refusal or silence by ``pipeline.core.store.failure``. psycopg and the
    store are looked up, not imported: a plugin whose environment has no psycopg never
    meets its errors, and one that never opened the store never meets the store's.
    """
    if isinstance(exc, PipelineError):
        return exc
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        return connection_failure(f"the database connection failed: {first_line(exc)}")
    store = sys.modules.get("pipeline.core.store")
    return store.failure(exc) if store is not None else None


def report_failure(component: str, exc: BaseException) -> None:
    """Print ``component: message`` on stderr, and record it for the orchestrator when asked to."""
    message = first_line(exc)
    print(f"{component}: {message}", file=sys.stderr)
    if path := os.environ.get(FAILURE_FILE_ENV):
        record = {"component": component, "transient": isinstance(exc, TransientPipelineError), "message": message}
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def run_plugin_cli(name: str, cli: Callable[[], object]) -> None:
    """Run a plugin's command line; a ``PipelineError`` ends it with one stderr line and exit code 1.

    Without this, the Singer SDK would print the whole traceback, burying the one
    line that says what to fix; a lost connection would go unrecorded.
    """
    try:
        cli()
    except Exception as exc:
        failure = as_pipeline_error(exc)
        if failure is None:
            raise
        report_failure(name, failure)
        sys.exit(1)
