"""One-line messages: every failure names its cause in one line, whatever the text it was given."""

from __future__ import annotations

import pytest

from pipeline.core.errors import first_line, first_text_line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  lock timeout\nDETAIL: more", "lock timeout"),
        ("\n\n  second\n", "second"),
        ("", "fallback"),
        (" \n ", "fallback"),
    ],
)
def test_first_text_line_is_the_first_line_with_text_or_the_fallback(text: str, expected: str) -> None:
    assert first_text_line(text, "fallback") == expected


def test_first_line_of_an_exception_without_message_is_its_type() -> None:
    assert first_line(ValueError()) == "ValueError"
    assert first_line(ValueError("bad\nvalue")) == "bad"
