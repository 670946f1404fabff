"""The answer check of the guided style: one sub-call asks whether the printed output supports a
final answer; at most one refusal per RLM, never a loop; every check is a trace event."""

from __future__ import annotations

from pathlib import Path

from conftest import code
from unbounded import RLM
from unbounded.engine import _printed_verbatim
from unbounded.errors import ModelError
from unbounded.models import Message, ScriptedLM
from unbounded.trace import read_trace

CONTEXT = {"net/config.py": "DEFAULT_PORT = 9020\n", "net/other.py": "x = 1\n"}
QUESTION = "Which file sets the default port, and to what?"


def root(answer: str) -> ScriptedLM:
    """Prints the file that holds the answer, then answers; answers again when sent back."""

    def reply(messages: list[Message]) -> str:
        if not any("PRINTED" in m.content for m in messages if m.role == "user"):  # the prompt has examples
            return code("print('PRINTED net/config.py:', context['net/config.py'])")
        return code(f"FINAL({answer!r})")

    return ScriptedLM(reply, name="root")


def checks(trace: Path) -> list[dict]:
    return [e.data for e in read_trace(trace) if e.type == "check"]


def check_calls(sub: ScriptedLM) -> list[list[Message]]:
    return [c for c in sub.calls if "Does what it printed support the proposed answer?" in c[-1].content]


def run(tmp_path: Path, answer: str, sub: ScriptedLM) -> tuple[object, ScriptedLM, Path]:
    trace = tmp_path / "t.jsonl"
    lm = root(answer)
    rlm = RLM(model=lm, sub_model=sub, repl="inprocess", prompt_style="guided", trace=trace)
    return rlm.run(QUESTION, CONTEXT), lm, trace


def test_a_refused_answer_is_sent_back_once_then_taken(tmp_path: Path) -> None:
    sub = ScriptedLM(["no, the output shows a different port"], name="sub")
    result, lm, trace = run(tmp_path, "9021", sub)
    assert (result.status, result.answer) == ("final", "9021"), "the second answer is taken: no loop"
    assert len(check_calls(sub)) == 1
    assert [(c["verdict"], c["refused"]) for c in checks(trace)] == [("no", True)]
    sent_back = [m.content for m in lm.calls[-1] if m.role == "user"][-1]
    assert "not supported: the output shows a different port" in sent_back
    assert "llm_query sees only what you pass it" in sent_back


def test_a_supported_answer_is_taken_at_once(tmp_path: Path) -> None:
    sub = ScriptedLM(["yes, DEFAULT_PORT = 9020 is printed"], name="sub")
    result, lm, trace = run(tmp_path, "9020", sub)
    assert (result.status, result.answer) == ("final", "9020")
    assert len(check_calls(sub)) == 1 and len(lm.calls) == 2
    assert [c["verdict"] for c in checks(trace)] == ["yes"]


def test_an_answer_printed_word_for_word_needs_no_sub_call(tmp_path: Path) -> None:
    """A small checker said "no" to right answers it could see (a file path the code printed)."""
    sub = ScriptedLM(["no"], name="sub")
    result, lm, trace = run(tmp_path, "net/config.py", sub)
    assert (result.status, result.answer) == ("final", "net/config.py")
    assert check_calls(sub) == [] and len(lm.calls) == 2
    assert [(c["verdict"], c["refused"]) for c in checks(trace)] == [("found", False)]


def test_a_path_and_line_printed_with_other_separators_is_word_for_word() -> None:
    """``search`` prints ``key line text``; the answer asked for is ``key:line``."""
    assert _printed_verbatim("urllib/parse.py:43", "urllib/parse.py 43    \"urlsplit\",")
    assert not _printed_verbatim("urllib/parse.py:43", "urllib/parse.py 431")
    assert not _printed_verbatim("parse.py", "urllib/parse.py 43")


def test_a_non_answer_is_never_taken_as_printed() -> None:
    """llm_map prints "not stated" for a piece that does not answer; a root once answered that."""
    printed = "[('multiprocessing/managers.py', 'Answer: not stated')]"
    assert not _printed_verbatim("not stated", printed)
    assert not _printed_verbatim("Unknown", "unknown")


def test_a_bare_number_in_the_output_is_still_checked(tmp_path: Path) -> None:
    """Numbers occur in any output by chance: "1" is printed (x = 1) but is no evidence."""
    sub = ScriptedLM(["no, 1 is not the port"], name="sub")
    result, _, trace = run(tmp_path, "1", sub)
    assert [c["verdict"] for c in checks(trace)] == ["no"] and len(check_calls(sub)) == 1
    assert result.answer == "1"


def test_part_of_a_longer_name_is_not_word_for_word(tmp_path: Path) -> None:
    sub = ScriptedLM(["no, config.py is not the whole path"], name="sub")
    _, _, trace = run(tmp_path, "config.py", sub)  # printed only inside "net/config.py"
    assert checks(trace)[0]["verdict"] == "no"


def test_a_check_that_cannot_run_never_blocks_the_answer(tmp_path: Path) -> None:
    def fail(messages: list[Message]) -> str:
        raise ModelError("the sub-model is down", kind="server")

    result, _, trace = run(tmp_path, "9020", ScriptedLM(fail, name="sub"))
    assert (result.status, result.answer) == ("final", "9020")
    assert [(c["verdict"], c["refused"]) for c in checks(trace)] == [("unchecked", False)]


class OptionsSeen(ScriptedLM):
    """A scripted sub-model that keeps the options of every call."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__(replies, name="sub")
        self.seen: list[tuple[str, dict]] = []  # (the last message, the options)

    async def complete(self, messages, **opts):  # type: ignore[no-untyped-def]
        self.seen.append((messages[-1].content, opts))
        return await super().complete(messages, **opts)


def test_the_check_asks_for_the_verdict_and_one_sentence_only(tmp_path: Path) -> None:
    from unbounded.engine import CHECK_STOP

    sub = OptionsSeen(["yes, DEFAULT_PORT = 9020 is printed"])
    result, _, _ = run(tmp_path, "9020", sub)
    assert result.status == "final"
    (opts,) = [o for last, o in sub.seen if "Does what it printed support the proposed answer?" in last]
    assert opts["stop"] == CHECK_STOP == [". ", ".\n"] and opts["max_tokens"] == 60


def test_a_number_a_reading_gave_as_its_answer_is_word_for_word() -> None:
    """``llm_map`` prints each reading's answer; a number after "Answer:" is what a reading found, not chance."""
    printed = "[('shipping/retry.py', 'Answer: 3'), ('shipping/couriers.py', 'not stated')]"
    assert _printed_verbatim("3", printed)
    assert not _printed_verbatim("3", "[('a.py', 'Answer: 30')]")
    assert not _printed_verbatim("3", "[('a.py', 'Answer: 3.5')]")
    assert not _printed_verbatim("3", "x = 3")
    assert _printed_verbatim("78", "[('email/_policybase.py', '78'), ('email/__init__.py', 'not stated')]")
    assert not _printed_verbatim("78", "[('a.py', 'line 78 of it')]")


def test_an_answer_printed_word_for_word_before_a_long_printout_needs_no_model(tmp_path: Path) -> None:
    """The path and line of a definition were printed, then the definition's 3,000-character source: the
    check read only the newest 3,000 characters, asked the 1.5B checker, and it said no to a right answer."""
    trace = tmp_path / "t.jsonl"
    lm = ScriptedLM([code('print("shipping/const.py 8")\nprint("x = 1\\n" * 2000)'), code('FINAL("shipping/const.py:8")')])
    sub = ScriptedLM(["no"], name="sub")
    rlm = RLM(model=lm, sub_model=sub, repl="inprocess", prompt_style="guided", trace=trace)
    result = rlm.run("Which file and line define `NORMAL`?", {"shipping/const.py": "NORMAL = 5\n"})
    assert result.answer == "shipping/const.py:8"
    assert [c["verdict"] for c in checks(trace)] == ["found"], checks(trace)
    assert check_calls(sub) == []
