"""The one exception the tap raises for bad input, and how a value is shown in its message."""

from __future__ import annotations

from pipeline.core.errors import PipelineError

# Long field values are cut in messages so that one bad row gives one readable line.
_MAX_SHOWN = 60


class TypedCSVError(PipelineError):
    """A source file, its schema or the config does not match what was declared.

    The message is always one line naming the file (and the line, for a row), so that
    the person reading Meltano's log can fix the source without a traceback. It is a
    permanent ``PipelineError``: the orchestrator fails the task at once instead of
    retrying a file that will fail the same way.
    """


def show(text: str) -> str:
    """``repr`` of a field value for an error message, cut if long.

    ``repr`` keeps a value with a newline or stray quote on one visible line.
    """
    if len(text) > _MAX_SHOWN:
        return repr(text[:_MAX_SHOWN]) + "..."
    return repr(text)
