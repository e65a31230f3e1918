"""Stream a CSV file as typed records, one row at a time, failing on the first bad row.

Nothing here holds more than one row: the source may have millions. Line numbers are
physical lines of the file (the header is line 1), so an error points at the line an
editor shows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from tap_typed_csv.errors import TypedCSVError, show
from tap_typed_csv.schema import Column


def read_records(path: Path, columns: Sequence[Column], setting: str) -> Iterator[dict[str, Any]]:
    """Yield each data row of ``path`` as a dict keyed in schema order, values typed.

    ``setting`` names the config entry of the path, for the message when it is missing.
    """
    with open_source(path, setting) as handle:
        rows = _numbered_rows(csv.reader(_decoded_lines(handle, path), strict=True), path)
        first = next(rows, None)
        if first is None:
            raise TypedCSVError(f"{path}: empty file, expected a header line")
        _, header = first
        order = _check_header(header, columns, path)
        yield from _typed(rows, order, [column.name for column in columns], path)


def open_source(path: Path, setting: str) -> BinaryIO:
    """Open the CSV file; a missing or unreadable one is an error naming the setting."""
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise TypedCSVError(f"{path}: no such file (setting {setting})") from None
    except OSError as exc:
        raise TypedCSVError(f"{path}: cannot open: {exc.strerror} (setting {setting})") from None


def _decoded_lines(handle: BinaryIO, path: Path, first: int = 1) -> Iterator[str]:
    r"""Decode the file one line at a time.

    Decoding per line (instead of a text-mode file, which decodes 8 KiB blocks ahead)
    lets an invalid byte be reported on its own line. Splitting bytes on ``\n`` is
    safe for UTF-8, where no multi-byte sequence contains that byte.
    """
    for number, raw in enumerate(handle, start=first):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TypedCSVError(
                f"{path} line {number}: not valid UTF-8 ({exc.reason} at byte {exc.start + 1} of the line)"
            ) from None
        yield line.removeprefix("\ufeff") if number == 1 else line


def _numbered_rows(reader: Any, path: Path, first: int = 1) -> Iterator[tuple[int, list[str]]]:
    """Each parsed row with the line it starts on; a CSV syntax error names its line.

    ``reader`` is a ``csv.reader`` (its type is private to ``_csv``); ``line_num``
    counts the lines it has consumed, so a quoted multi-line field is accounted for.
    ``first`` is the file line the reader starts on.
    """
    start = first
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise TypedCSVError(f"{path} line {first - 1 + reader.line_num}: {exc}") from None
        yield start, row
        start = first + reader.line_num


def _check_header(header: list[str], columns: Sequence[Column], path: Path) -> list[Column]:
    """Check that the header is exactly the schema; return the column of each field."""
    by_name = {column.name: column for column in columns}
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise TypedCSVError(f"{path}: header has column {show(name)} twice")
        if name not in by_name:
            raise TypedCSVError(f"{path}: header has unexpected column {show(name)} (not in the schema)")
        seen.add(name)
    missing = [name for name in by_name if name not in seen]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise TypedCSVError(f"{path}: header is missing column{plural} {', '.join(map(repr, missing))}")
    return [by_name[name] for name in header]


def _typed(
    rows: Iterable[tuple[int, list[str]]], order: list[Column], names: list[str], path: Path
) -> Iterator[dict[str, Any]]:
    """Type each row (the hot loop): check its width, convert each field or refuse its NULL."""
    width = len(order)
    template = dict.fromkeys(names)
    for line, row in rows:
        if len(row) != width:
            if not row and width == 1:  # csv gives [] for an empty line: one empty field
                row = [""]
            else:
                raise TypedCSVError(f"{path} line {line}: {len(row)} fields, expected {width}")
        record = template.copy()
        for column, text in zip(order, row, strict=True):
            if text == "":
                if not column.nullable:
                    raise TypedCSVError(
                        f"{path} line {line}: column {column.name!r}: empty (NULL) but the schema does not allow null"
                    )
                continue
            try:
                record[column.name] = column.convert(text)
            except ValueError as exc:
                raise TypedCSVError(f"{path} line {line}: column {column.name!r}: {exc}") from None
        yield record
