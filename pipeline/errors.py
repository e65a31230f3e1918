"""The one exception the pipeline raises for bad input or a refused step.

Its message is a single line meant for a person: it names the file, table or
setting at fault and, where there is one, the command that fixes it.
"""

import sys
from collections.abc import Callable


class PipelineError(Exception):
    """A clear, one-line failure of a pipeline step."""


def run_plugin_cli(name: str, cli: Callable[[], object]) -> None:
    """Run a plugin's command line; a ``PipelineError`` ends it with one stderr line and exit code 1.

    Without this, the Singer SDK would print the whole traceback, burying the one
    line that says what to fix.
    """
    try:
        cli()
    except PipelineError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        sys.exit(1)
