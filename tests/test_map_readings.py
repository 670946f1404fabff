"""What llm_map gives back for a text reading: the value, without the label a sub-model puts on it."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("Answer: 10", "10"),
        ("**Answer:** `pickle`", "pickle"),
        ("answer: 'HTTP/1.0'", "HTTP/1.0"),
        ("128", "128"),
        ("not stated", "not stated"),
        ("Answer: 3\nbecause the loop retries three times", "Answer: 3\nbecause the loop retries three times"),
    ],
)
def test_a_text_reading_drops_its_answer_label(reply: str, value: str) -> None:
    from unbounded.repl.toolkit import parse_reply

    assert parse_reply(reply, None) == (value, True)
