"""Refusing a run whose source cannot be extracted whole: every reason on a line of its own, then one failure.

Why all at once: a user fixing a source should see every table and column at fault in
one run, not one per run; the failure that ends the run then keeps the single line
that the failure report (``pipeline.core.errors``) promises.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pipeline.core.errors import PipelineError


class UnextractableSourceError(PipelineError):
    """Schemas, tables or columns that cannot be extracted, already printed one per line; this is the summary."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"{count} source schema(s), table(s) or column(s) cannot be extracted "
            "(each listed above with its fix); "
            "nothing was extracted and the job publishes nothing"
        )


def refuse(problems: Sequence[str]) -> None:
    """Fail the run on ``problems`` (one line each, with its fix); does nothing when there is none.

    A single problem is the failure's own line; several are printed first, then summed up.
    """
    if not problems:
        return
    if len(problems) == 1:
        raise PipelineError(problems[0])
    for problem in problems:
        print(f"tap-postgres-native: {problem}", file=sys.stderr)
    raise UnextractableSourceError(len(problems))
