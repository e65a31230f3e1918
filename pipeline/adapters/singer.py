"""The singer-sdk details the plugins need that it has no public name for: the one place that touches them.

singer-sdk (0.54) hands a stream's files over as a BATCH message, but its pieces (the
encoding, the batch config and its storage target) exist only in the private
``singer_sdk.helpers._batch``; the selection of a catalog entry's schema only in the
private ``singer_sdk.helpers._catalog``; and a sink parses the date strings of every
record in the private ``Sink._parse_timestamps_in_record``, with no public switch.
The plugins import these from here instead, so an upgrade that moves or changes them
breaks here only, and ``tests/plugins/test_singer_adapter.py`` (run in each plugin's
virtualenv) fails on the behaviour the plugins rely on.

Only the plugins import this module: the ``pipeline`` package is installed without
singer-sdk elsewhere.
"""

from __future__ import annotations

from typing import Any

from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig, StorageTarget
from singer_sdk.helpers._catalog import get_selected_schema
from singer_sdk.singerlib import SelectionMask

__all__ = [
    "CSV_ENCODING",
    "BaseBatchFileEncoding",
    "BatchConfig",
    "KeepsDateText",
    "csv_batch_config",
    "selected_schema",
]

# The encoding of every file the project hands over in a BATCH message: a table's
# file in PostgreSQL's CSV text form, which the receiving sink reads as it is.
CSV_ENCODING = BaseBatchFileEncoding(format="csv")


def csv_batch_config(root_uri: str) -> BatchConfig:
    """A stream's batch config for handing over its ``csv`` files, which lie under ``root_uri``."""
    return BatchConfig(encoding=CSV_ENCODING, storage=StorageTarget(root=root_uri))


def selected_schema(stream_name: str, schema: dict[str, Any], selection: SelectionMask) -> dict[str, Any]:
    """A copy of ``schema`` without the properties ``selection`` leaves out; every other key is kept as it is."""
    return get_selected_schema(stream_name, schema, selection)


class KeepsDateText:
    """A sink mixin (put it before the sink class): date, time and date-time values stay the text the tap sent.

    singer-sdk parses them to ``datetime`` objects before ``preprocess_record``, where
    the text is already gone; writing those back can only change the text (e.g. drop
    the microseconds), never improve it.
    """

    def _parse_timestamps_in_record(self, record: dict[str, Any], schema: dict[str, Any], treatment: Any) -> None:
        """Leave every value of the record as it came."""
