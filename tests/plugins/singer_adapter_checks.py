"""What the plugins rely on of singer-sdk through ``pipeline.adapters.singer``, checked against the installed SDK.

Run with a plugin's interpreter (singer-sdk is in the plugins' virtualenvs only):
``python singer_adapter_checks.py``. Prints one JSON line, ``{"failures": [...]}``,
one line per behaviour that the installed singer-sdk no longer has.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from singer_sdk import Stream, Tap, Target
from singer_sdk.singerlib import Catalog
from singer_sdk.sinks import RecordSink

from pipeline.adapters.singer import (
    CSV_ENCODING,
    BaseBatchFileEncoding,
    BatchConfig,
    KeepsDateText,
    csv_batch_config,
    selected_schema,
)

# A hand-over's manifest entry as pipeline/handover.py writes it: the figures ride in the fragment.
ENTRY = "file:///data/.staging/job/2024-01-02/.incoming/run/orders.csv#rows=4&sha256=abc"
DATES = {"at": "2024-01-02T03:04:05.123456+00:00", "on": "2024-01-02", "clock": "03:04:05.5"}
DATE_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": ["string", "null"], "format": "date-time"},
        "on": {"type": "string", "format": "date"},
        "clock": {"type": "string", "format": "time"},
    },
}


class HandedOver(Stream):
    """A stream that hands one file over, as the project's taps do."""

    def get_batch_config(self, config: Any) -> BatchConfig:
        return csv_batch_config("file:///data")

    def get_batches(
        self, batch_config: BatchConfig, context: Any = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        yield batch_config.encoding, [ENTRY]

    def get_records(self, context: Any) -> Iterable[dict[str, Any]]:
        raise AssertionError("the SDK asked a batch stream for records")


class HandingTap(Tap):
    name = "tap-probe"
    config_jsonschema = {"type": "object", "properties": {}}  # noqa: RUF012

    def discover_streams(self) -> list[Stream]:
        return [HandedOver(self, name="orders", schema={"type": "object", "properties": {"id": {"type": "integer"}}})]


RECEIVED: dict[str, list[dict[str, Any]]] = {}
BATCHES: list[tuple[BaseBatchFileEncoding, list[str]]] = []


class Recording(RecordSink):
    """Records what the SDK hands the sink."""

    def process_record(self, record: dict, context: dict) -> None:
        RECEIVED.setdefault(self.stream_name, []).append(dict(record))

    def process_batch_files(self, encoding: BaseBatchFileEncoding, files: Sequence[str]) -> None:
        BATCHES.append((encoding, list(files)))


class KeptRecording(KeepsDateText, Recording):
    """The same, keeping date text as target-lfs's sink does."""


class RecordingTarget(Target):
    name = "target-probe"
    config_jsonschema = {"type": "object", "properties": {}}  # noqa: RUF012
    default_sink_class = Recording

    def get_sink_class(self, stream_name: str) -> type[Recording]:
        return KeptRecording if stream_name == "kept" else Recording


def tap_output() -> list[dict[str, Any]]:
    """The messages a full sync of ``HandingTap`` writes."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        HandingTap(config={}).sync_all()
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def target_input(*messages: dict[str, Any]) -> None:
    """Feed ``messages`` to ``RecordingTarget`` as its standard input would."""
    lines = io.StringIO("".join(json.dumps(message) + "\n" for message in messages))
    with contextlib.redirect_stdout(io.StringIO()):
        RecordingTarget(config={}).listen(lines)


def check_tap_hands_over_the_manifest() -> None:
    batches = [m for m in tap_output() if m["type"] == "BATCH"]
    sent = [(m["stream"], {k: v for k, v in m["encoding"].items() if v is not None}, m["manifest"]) for m in batches]
    assert sent == [("orders", {"format": "csv"}, [ENTRY])], f"a stream's csv batch became {batches}"


def check_target_gets_the_manifest_as_sent() -> None:
    BATCHES.clear()
    schema = {"type": "SCHEMA", "stream": "kept", "schema": DATE_SCHEMA, "key_properties": ["id"]}
    batch = {"type": "BATCH", "stream": "kept", "encoding": {"format": "csv", "compression": None}, "manifest": [ENTRY]}
    target_input(schema, batch)
    assert BATCHES == [(CSV_ENCODING, [ENTRY])], f"a BATCH message reached the sink as {BATCHES}"


def check_dates_stay_text_only_with_keeps_date_text() -> None:
    RECEIVED.clear()
    messages = []
    for stream in ("kept", "parsed"):
        messages.append({"type": "SCHEMA", "stream": stream, "schema": DATE_SCHEMA, "key_properties": ["id"]})
        messages.append({"type": "RECORD", "stream": stream, "record": {"id": 1, **DATES}})
    target_input(*messages)
    assert RECEIVED["kept"] == [{"id": 1, **DATES}], f"KeepsDateText's sink got {RECEIVED['kept']}"
    # Otherwise the SDK parses them: if it stops, KeepsDateText has nothing left to do.
    parsed = RECEIVED["parsed"][0]
    assert isinstance(parsed["at"], dt.datetime), f"the SDK no longer parses date-time values: {parsed}"


def check_selected_schema_drops_only_deselected_properties() -> None:
    schema = {
        "type": "object",
        "x-source-schema": "public",
        "x-source-table": "orders",
        "properties": {"id": {"type": "integer", "x-sql-type-oid": 23}, "secret": {"type": "string"}},
        "required": ["id", "secret"],
    }
    entry = {
        "tap_stream_id": "public-orders",
        "schema": schema,
        "metadata": [
            {"breadcrumb": [], "metadata": {"selected": True}},
            {"breadcrumb": ["properties", "secret"], "metadata": {"selected": False}},
        ],
    }
    original = json.loads(json.dumps(schema))
    selection = Catalog.from_dict({"streams": [entry]}).get_stream("public-orders").metadata.resolve_selection()
    result = selected_schema("public-orders", schema, selection)
    expected = {**original, "properties": {"id": original["properties"]["id"]}, "required": ["id"]}
    assert result == expected, f"selected_schema gave {result}"
    assert schema == original, "selected_schema changed the schema it was given"


CHECKS: list[Callable[[], None]] = [
    check_tap_hands_over_the_manifest,
    check_target_gets_the_manifest_as_sent,
    check_dates_stay_text_only_with_keeps_date_text,
    check_selected_schema_drops_only_deselected_properties,
]


def main() -> None:
    """Run every check; print the failures, one line each."""
    failures = []
    for check in CHECKS:
        try:
            check()
        except Exception as exc:  # each check's failure is reported, the others still run
            failures.append(f"{check.__name__}: {type(exc).__name__}: {exc}")
    print(json.dumps({"failures": failures}))


if __name__ == "__main__":
    main()
