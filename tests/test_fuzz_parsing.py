"""Fuzzing the reply parser: any text a model sends is parsed quickly and without an exception.

A short run here (CI); ``scripts/fuzz.py`` runs the same properties for minutes with
``UNBOUNDED_FUZZ_EXAMPLES`` raised. The alphabet leans on what breaks parsers: fences, ``FINAL(``,
parentheses, quotes, backslashes and newlines.
"""

from __future__ import annotations

import os
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unbounded.parsing import find_text_final, parse_reply

EXAMPLES = int(os.environ.get("UNBOUNDED_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

PIECES = [
    "```", "```python\n", "```repl\n", "```json\n", "```py x\n", " ```", "``` ", "\n```\n", "``",
    "FINAL(", "FINAL_VAR(", "FINAL (", "FINAL", "(", ")", '"', "'", '"""', "\\", "\n", "\r\n", "\t", " ",
    "x", "42", "print(1)", "é", "\u2028", "\x00",
]  # fmt: skip
replies = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=80).map("".join),
    st.text(max_size=400),
    st.lists(st.sampled_from(PIECES), max_size=8).map(lambda p: "".join(p) * 500),  # long, repetitive
)


@FUZZ
@given(replies)
def test_parse_reply_never_fails_and_stays_within_the_reply(reply: str) -> None:
    started = time.perf_counter()
    parsed = parse_reply(reply)
    assert time.perf_counter() - started < 2.0
    for block in parsed.code_blocks:
        assert block.strip() and block in reply
    assert len(parsed.text_outside_code) <= len(reply)
    if parsed.final is not None:  # found in the prose around the blocks; FINAL("") is an empty answer
        assert parsed.final.value in parsed.text_outside_code


@FUZZ
@given(st.text(alphabet=st.characters(blacklist_characters="`"), max_size=300))
def test_a_fenced_block_comes_back_as_written(code: str) -> None:
    lines = code.splitlines()
    parsed = parse_reply("Let me look.\n```python\n" + "\n".join(lines) + "\n```\nDone.")
    body = "\n".join(lines) + "\n"
    assert parsed.code_blocks == ([body] if body.strip() else [])


@FUZZ
@given(
    st.text(
        alphabet=st.characters(blacklist_characters="()\"'\\\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=200
    )
)
def test_a_text_final_comes_back_as_written(answer: str) -> None:
    found = find_text_final(f"I am done.\nFINAL({answer})")
    if answer.strip():
        assert found is not None and found.value == answer.strip()
    else:
        assert found is None


def test_pathological_replies_are_linear() -> None:
    for reply in (
        "FINAL(" * 50_000,
        "FINAL(x\n" * 50_000,
        "```python\n" * 100_000,
        ("```" + "a" * 1000 + "\n") * 1000,
        "FINAL(" + "(" * 500_000,
        'FINAL("' + "\\" * 500_000,
    ):
        started = time.perf_counter()
        parse_reply(reply)
        assert time.perf_counter() - started < 2.0, reply[:40]
