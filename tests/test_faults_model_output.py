"""Bad model output: each kind is handled, the run goes on, and the model is told what happened."""

from __future__ import annotations

import time

import pytest

from conftest import code
from unbounded import RLM, Budget
from unbounded.models import ScriptedLM


def run(replies: list[str], repl: str = "inprocess", turns: int = 6) -> tuple[object, ScriptedLM]:
    lm = ScriptedLM(replies)
    result = RLM(model=lm, repl=repl, budget=Budget(max_iterations=turns)).run("q", "some context")
    return result, lm


def shown(lm: ScriptedLM, turn: int) -> str:
    """What the model was shown after its ``turn``-th reply (1-based)."""
    return lm.calls[turn][-1].content


@pytest.mark.parametrize("reply", ["I think the answer is in there somewhere.", "", "   \n\t  \n", "\n\n"])
def test_no_code_or_only_whitespace_gets_a_reminder(reply: str, repl_kind: str) -> None:
    result, lm = run([reply, code("FINAL('ok')")], repl_kind)
    assert (result.status, result.answer) == ("final", "ok")
    assert "no ```python block" in shown(lm, 1)


@pytest.mark.parametrize(
    "reply, error",
    [
        ("```python\nprint(1)\n``", "SyntaxError"),  # a closing fence one backtick short
        ("```python\nx = (1,\n", "SyntaxError"),  # cut mid-expression
        ("``python\nprint(1)\n```", None),  # a two-backtick opener: prose, no code
        ("```python\ndef f(:\n    pass\n```", "SyntaxError"),
        ("```python\n\tif True:\n  x = 1\n```", "IndentationError"),
        ("```python\nprint('unterminated)\n```", "SyntaxError"),
    ],
)
def test_broken_fences_and_syntax_errors_come_back_as_errors(reply: str, error: str | None, repl_kind: str) -> None:
    result, lm = run([reply, code("FINAL('recovered')")], repl_kind)
    assert (result.status, result.answer) == ("final", "recovered")
    if error:
        assert error in shown(lm, 1)


def test_a_1_mb_reply_is_parsed_fast_and_run(repl_kind: str) -> None:
    filler = "# " + "padding " * 60 + "\n"
    big = "```python\n" + filler * (1024 * 1024 // len(filler)) + "FINAL('from a big reply')\n```"
    assert len(big) > 1_000_000
    started = time.perf_counter()
    result, _ = run([big], repl_kind)
    assert (result.status, result.answer) == ("final", "from a big reply")
    assert time.perf_counter() - started < 10


def test_a_1_mb_reply_of_prose_and_final_markers() -> None:
    prose = "FINAL(" * 100_000 + "\nthinking...\n" * 50_000
    started = time.perf_counter()
    result, lm = run([prose, code("FINAL('done')")])
    assert time.perf_counter() - started < 10
    assert result.answer == "done" and "no ```python block" in shown(lm, 1)


class Weird:
    def __repr__(self) -> str:
        raise RuntimeError("unprintable")

    __str__ = __repr__


def test_final_of_values_that_are_not_plain_data(repl_kind: str) -> None:
    for src, check in [
        ("FINAL({1, 2})", lambda a: a == "[1, 2]"),
        ("FINAL(object())", lambda a: a.startswith("<object object")),
        ("FINAL(lambda x: x)", lambda a: "lambda" in a),
        (
            "class W:\n    def __repr__(self):\n        raise RuntimeError('no')\n    __str__ = __repr__\nFINAL(W())",
            lambda a: "W object" in a,
        ),
        ("FINAL(b'bytes')", lambda a: "bytes" in a),
        ("FINAL(float('nan'))", lambda a: a == "nan"),
    ]:
        result, _ = run([code(src)], repl_kind)
        assert result.status == "final" and check(result.answer), (src, result.answer)


def test_final_var_of_a_missing_name(repl_kind: str) -> None:
    result, lm = run([code("FINAL_VAR('nothing_here')"), "FINAL_VAR(also_missing)", code("FINAL('ok')")], repl_kind)
    assert result.answer == "ok"
    assert "no variable named 'nothing_here'" in shown(lm, 1)
    assert "no ```python block" in shown(lm, 2)  # a text-form FINAL_VAR of nothing is not an answer


def test_a_huge_final_answer_is_kept_whole() -> None:
    result, _ = run([code("FINAL('a' * 5_000_000)")], "process")
    assert result.status == "final" and len(result.answer) == 5_000_000
