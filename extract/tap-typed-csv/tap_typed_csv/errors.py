"""The one exception the tap raises for bad input, and how the CLI reports it."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

# Long field values are cut in messages so that one bad row gives one readable line.
_MAX_SHOWN = 60


class TypedCSVError(Exception):
    """A source file, its schema or the config does not match what was declared.

    The message is always one line naming the file (and the line, for a row), so that
    the person reading Meltano's log can fix the source without a traceback.
    """


def show(text: str) -> str:
    """``repr`` of a field value for an error message, cut if long.

    ``repr`` keeps a value with a newline or stray quote on one visible line.
    """
    if len(text) > _MAX_SHOWN:
        return repr(text[:_MAX_SHOWN]) + "..."
    return repr(text)


@contextlib.contextmanager
def exit_on_error(logger: logging.Logger) -> Iterator[None]:
    """Turn a :class:`TypedCSVError` into one ERROR log line and exit status 1.

    The SDK's default handler logs the full traceback, which buries the one line
    that matters; bad input is expected, so it gets no traceback. Other exceptions
    (bugs) pass through untouched and keep theirs.
    """
    try:
        yield
    except TypedCSVError as exc:
        logger.error("%s", exc)  # no traceback: noise for bad input
        sys.exit(1)
