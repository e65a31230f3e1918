r"""Batch mode: the validated file written as one PostgreSQL-CSV batch file, without RECORD messages.

Why: RECORD messages cost the SDK's per-record JSON path twice (tap and target), about
13k rows/s on 2M rows; the checks themselves are cheap. In batch mode every row is
checked exactly as in RECORD mode, and the output file holds exactly the text that
target-lfs would have written from the records (the same values, same form).

Two ways through a file, same checks, same output:

* fast: blocks of whole lines matched by one regular expression built from the
  columns' declared SQL types, which accepts only lines whose every field is valid,
  in range and already in its canonical output form (an integer without sign or
  leading zeros and within its type's range, ``true``/``false``, a calendar date, a
  plain unquoted string no longer than its varchar...; see tap_typed_csv.patterns).
  Such a block is valid by construction and is copied as is. Only files whose
  header is in schema order take it.
* exact: from the first block that does not match (a quoted field, a NULL, an
  error...) to the end of the file, the RECORD mode's own reader types each row and
  its values are encoded: errors name the file and line as in RECORD mode.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.days.pgcsv import quote_text
from tap_typed_csv.errors import TypedCSVError
from tap_typed_csv.reader import _check_header, _decoded_lines, _numbered_rows, _typed, open_source
from tap_typed_csv.schema import Column

_BLOCK = 1 << 22


def encode(value: Any) -> str:
    """A typed value as target-lfs writes it: NULL empty, booleans true/false, numbers as read."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return quote_text(value)
    # A Decimal as read: "-0" keeps its sign (a real's -0 is a value of its own).
    return str(value)


def fast_pattern(columns: Sequence[Column]) -> re.Pattern[str]:
    """The regular expression of a block of lines whose every field is valid and canonical."""
    fields = [f"(?:{column.sql.canonical}){'?' if column.nullable else ''}" for column in columns]
    return re.compile("(?:" + ",".join(fields) + r"\r?\n)*+")


def write_batch(path: Path, columns: Sequence[Column], setting: str, out: BinaryIO) -> int:
    """Check every row of ``path`` and write the PostgreSQL-CSV body to ``out``; returns the rows."""
    with open_source(path, setting) as handle:
        header = next(_numbered_rows(csv.reader(_decoded_lines(handle, path), strict=True), path), None)
        if header is None:
            raise TypedCSVError(f"{path}: empty file, expected a header line")
        order = _check_header(header[1], columns, path)
        pattern = fast_pattern(columns) if order == list(columns) else None
        rows, line, offset = 0, 2, handle.tell()
        pending = b""
        while pattern is not None:
            block = handle.read(_BLOCK)
            data = pending + block
            cut = data.rfind(b"\n") + 1
            body, pending = data[:cut], data[cut:]
            try:
                valid = pattern.fullmatch(body.decode("utf-8")) is not None
            except UnicodeDecodeError:
                valid = False
            if not valid:
                break
            lines = body.count(b"\n")
            out.write(body.replace(b"\r\n", b"\n") if b"\r" in body else body)
            rows, line, offset = rows + lines, line + lines, offset + cut
            if not block:  # end of file: what is left, if anything, is a last line without \n
                if not pending:
                    return rows
                break
        handle.seek(offset)
        names = [column.name for column in columns]
        records = _typed(
            _numbered_rows(csv.reader(_decoded_lines(handle, path, line), strict=True), path, line), order, names, path
        )
        for record in records:
            out.write((",".join(map(encode, record.values())) + "\n").encode("utf-8"))
            rows += 1
        return rows
