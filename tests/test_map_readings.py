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


def test_a_yes_no_verdict_is_asked_without_the_not_stated_way_out() -> None:
    """Offered "If the text does not say, answer: not stated", a 1.5B sub-model gave that to 195 of 198
    package descriptions it was to classify: a verdict is a judgment, so it is asked as one."""
    from unbounded.repl.toolkit import bind

    sent: list[list[str]] = []

    def call(kind: str, payload: dict) -> list[str]:
        sent.append(payload["prompts"])
        return ["yes" if "python" in p else "no" for p in payload["prompts"]]

    tools = bind(lambda: None, call, lambda note: None)
    texts = [f"Package: pkg{i}\nDescription: {'a python module' if i % 2 else 'a font'} " + "detail " * 80 for i in range(4)]
    verdicts = tools["llm_map"]("Is this a Python package? Answer yes or no.", texts, parse="yes/no")
    assert list(verdicts) == [False, True, False, True] and verdicts.errors == []
    prompts = sent[-1]
    assert len(prompts) == 4 and all("not stated" not in p and p.endswith("yes or no.") for p in prompts)
    readings = tools["llm_map"]("What does it install?", texts[:1])  # a reading keeps it
    assert readings is not None and "not stated" in sent[-1][0]
