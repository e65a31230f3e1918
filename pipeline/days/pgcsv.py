"""PostgreSQL's CSV text form of one field, shared by every writer of day files.

Why one function: the CSV tap (tap-typed-csv) and target-lfs both write fields that
``COPY ... (FORMAT csv)`` must read back exactly, and PostgreSQL tells NULL from the
empty string only by quoting (an unquoted empty field is NULL, ``""`` is the empty
string); two copies of the rule could drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Quoted: the delimiter, the quote, line breaks, and leading or trailing white space
# (kept as data). ``\.`` alone is COPY's end-of-data marker, so it is quoted too.
_NEEDS_QUOTES = re.compile(r'[,"\r\n]|^\s|\s$|^\\\.$')


def quote_text(text: str) -> str:
    """Return ``text`` as one CSV field: quoted when it is empty or has special characters."""
    if text == "":
        return '""'
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def header_line(columns: Iterable[str]) -> bytes:
    """The header line of every day file: the column names in order, each one field, UTF-8.

    The taps write it and target-lfs checks it byte for byte, so a file's bytes are the
    same whichever process wrote them.
    """
    return (",".join(quote_text(name) for name in columns) + "\n").encode("utf-8")
