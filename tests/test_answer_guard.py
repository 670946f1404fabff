"""Which replies count as a literal final answer, and when the guard refuses one."""

from __future__ import annotations

import pytest

from conftest import code
from unbounded.answer_guard import AnswerGuard, grounded, literal_final
from unbounded.parsing import parse_reply


@pytest.mark.parametrize(
    "reply,expected",
    [
        (code('FINAL("12345")'), "12345"),
        (code("FINAL(-3)"), "-3"),
        (code("FINAL((10, 20, 30, 40))"), "(10, 20, 30, 40)"),
        (code("print('done')\nFINAL(['a', 'b'])"), "['a', 'b']"),
        ("The answer is FINAL(7731)", "7731"),
        (code("FINAL(hits[0].text)"), None),  # computed from the context
        (code("x = grep('code')\nFINAL('7731')"), None),  # the reply reads the context too
        (code("FINAL(f'{n}')"), None),
        ("FINAL_VAR(answer)", None),
        (code("FINAL('unclosed"), None),  # not Python: left to the REPL to report
        ("no final at all", None),
    ],
)
def test_literal_final(reply: str, expected: str | None) -> None:
    assert literal_final(parse_reply(reply)) == expected


def test_grounded_ignores_case_quotes_and_surrounding_space() -> None:
    seen = ["Question: what is the code?", "The secret code for the vault is 7731-AB."]
    assert grounded(" '7731-ab' ", seen)
    assert not grounded("7731-AC", seen)
    assert not grounded("''", seen)  # an empty answer is never grounded


def test_each_refusal_happens_once() -> None:
    guard = AnswerGuard("q?", context_unseen=True, check_grounding=True)
    blind = parse_reply(code("FINAL('12345')"))
    assert guard.refusal(1, blind) is not None  # first turn, nothing read yet
    assert guard.refusal(2, blind) is not None  # still never shown
    assert guard.refusal(3, blind) is None  # the model insists: taken
    guard = AnswerGuard("q?", context_unseen=False, check_grounding=False)
    assert guard.refusal(1, blind) is None  # the whole context was in the prompt; no grounding check
    guard = AnswerGuard("q?", context_unseen=True, check_grounding=True)
    guard.observe(["... is 12345."])
    assert guard.refusal(2, blind) is None
