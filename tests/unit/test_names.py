import re

import pytest

from pipeline.core.errors import PipelineError
from pipeline.core.names import analytics_schema, encode_name, table_folder

AWKWARD = ["Orders", "orders", "order items", "a/b", "..", ".", "x-y", 'say "hi"', "заказы", "%41", "a%2fb", "ß" * 31]


_ENCODED = re.compile(r"(?:[a-z0-9_]|%[0-9a-f]{2})+")


def decode_name(encoded: str) -> str:
    """The name whose folder-name form is ``encoded``: the proof that the encoding is reversible.

    Only the tests decode; the pipeline keeps exact names in ``_schema.json``.
    """
    if not _ENCODED.fullmatch(encoded):
        raise PipelineError(f"{encoded!r} is not an encoded table name")
    raw = bytearray()
    index = 0
    while index < len(encoded):
        if encoded[index] == "%":
            raw.append(int(encoded[index + 1 : index + 3], 16))
            index += 3
        else:
            raw.append(ord(encoded[index]))
            index += 1
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{encoded!r} is not an encoded table name: not UTF-8") from exc
    if encode_name(name) != encoded:
        raise PipelineError(f"{encoded!r} is not an encoded table name: not in canonical form")
    return name


@pytest.mark.parametrize("name", ["orders", "order_details", "t1", "_"])
def test_plain_names_stay_as_they_are(name: str) -> None:
    assert encode_name(name) == name


@pytest.mark.parametrize("name", AWKWARD)
def test_every_name_round_trips_to_a_safe_segment(name: str) -> None:
    encoded = encode_name(name)
    assert decode_name(encoded) == name
    assert "/" not in encoded
    assert "\\" not in encoded
    assert encoded not in (".", "..")
    assert encoded == encoded.lower()
    assert len(encoded.encode()) <= 255


def test_encoding_is_one_to_one_even_ignoring_case() -> None:
    folded = {encode_name(name).casefold() for name in AWKWARD}
    assert len(folded) == len(AWKWARD)


@pytest.mark.parametrize("bad", ["", "A", "%4F", "%2", "a/b", "%ff", "%61"])
def test_decode_refuses_what_encode_cannot_produce(bad: str) -> None:
    with pytest.raises(PipelineError):
        decode_name(bad)


def test_table_folders_and_analytics_schemas_keep_source_schemas_apart() -> None:
    assert table_folder("public", "orders") == "orders"
    assert table_folder("sales", "orders") == "sales.orders"
    assert table_folder("public", "sales.orders") == "sales%2eorders"
    assert analytics_schema("postgres", "public") == "postgres"
    assert analytics_schema("postgres", "sales") == "postgres__sales"
    assert analytics_schema("csv") == "csv"
    with pytest.raises(PipelineError, match="would be 70 bytes, more than PostgreSQL's 63 "):
        analytics_schema("postgres", "s" * 60)
