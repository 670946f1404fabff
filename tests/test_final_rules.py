"""Rules a final answer is held to by its form: a non-answer, or a file named other than by its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_answer_check import CONTEXT, checks, run
from unbounded.final_rules import is_non_answer, not_a_key, refusal
from unbounded.models import ScriptedLM

KEYS = {"xml/dom/minidom.py": "", "xml/dom/__init__.py": "", "email/utils.py": "", "shutil.py": ""}


@pytest.mark.parametrize("answer", ["not stated", "Answer: not stated.", "'Unknown'", "None", "", "N/A", "True",
                                    "Error: listen_backlog is not defined in the source code.",
                                    "NameError: name 'x' is not defined", "No exception classes found.",
                                    "No packages found"])
def test_non_answers(answer: str) -> None:
    assert is_non_answer(answer, "What is the default port of the server?")


@pytest.mark.parametrize(("answer", "question"), [("True", "Does the parser keep comments by default?"),
                                                  ("9020", "What is the default port?"),
                                                  ("no", "Question: Is the cache shared between threads?")])
def test_answers(answer: str, question: str) -> None:
    assert not is_non_answer(answer, question)


def test_a_file_named_as_a_module_is_sent_back_with_its_key() -> None:
    q = "Which file defines the class `Node`? Give the path exactly as it is written among the context's keys."
    assert "Did you mean 'xml/dom/minidom.py'?" in not_a_key("xml.dom.minidom", q, KEYS)
    assert "Did you mean 'xml/dom/__init__.py'?" in not_a_key("xml.dom:12", q, KEYS)
    assert "Did you mean" not in not_a_key("dom/nothing.py", q, KEYS)
    for right in ("xml/dom/minidom.py", "xml/dom/minidom.py:12", "Lib/email/utils.py", "`shutil.py`", "utils.py"):
        assert not_a_key(right, q, KEYS) is None, right


def test_the_key_rule_holds_only_for_questions_about_files_and_file_like_answers() -> None:
    assert not_a_key("xml.dom.minidom", "What does the module docstring say?", KEYS) is None
    assert not_a_key("3.14", "Which file sets the version? Answer with the version.", KEYS) is None
    assert not_a_key("xml.dom.minidom", "Which file defines `Node`?", "a plain text") is None
    assert refusal("78", "Which file sets the line length, and what is it?", KEYS) is None


def test_a_non_answer_is_sent_back_once_without_asking_a_model(tmp_path: Path) -> None:
    sub = ScriptedLM(["yes"], name="sub")
    result, lm, trace = run(tmp_path, "not stated", sub)
    assert (result.status, result.answer) == ("final", "not stated"), "taken when the model insists: no loop"
    first = checks(trace)[0]
    assert (first["verdict"], first["refused"]) == ("rule", True)
    sent_back = [m.content for m in lm.calls[-1] if m.role == "user"][-1]
    assert "is not an answer to the question" in sent_back and "find(question, k=8)" in sent_back
    assert CONTEXT  # the context the scripted root reads


_PARCELS = {
    "shipping/air.py": "from .customs import CustomsRules\n\nclass AirParcel(CustomsRules, Parcel):\n    speed = 3\n",
    "shipping/customs.py": "class CustomsRules:\n    def duty(self):\n        return 0\n",
}
_CHAIN_WHERE = "`AirParcel` takes its customs rules from a base class. In which file is that base class defined?"


def test_a_chain_answered_with_its_first_step_is_sent_on() -> None:
    from unbounded.final_rules import refusal
    from unbounded.shapes import Shape, question_shape

    assert question_shape(_CHAIN_WHERE) is Shape.CHAIN
    note = refusal("shipping/air.py", _CHAIN_WHERE, _PARCELS)
    assert note is not None and "`AirParcel`" in note and "definitions(" in note
    assert refusal("shipping/customs.py", _CHAIN_WHERE, _PARCELS) is None


def test_the_first_step_rule_is_only_for_chains_that_ask_for_a_file() -> None:
    from unbounded.final_rules import refusal

    where = "Which file defines the class `AirParcel`?"
    assert refusal("shipping/air.py", where, _PARCELS) is None
    value = "`AirParcel` takes its speed from a constant. What is the value of that constant?"
    assert refusal("3", value, _PARCELS) is None


_POLICIES = {
    "leave-2020.txt": "LEAVE POLICY 2020. This policy replaces the Holiday Scheme of 2015.",
    "holiday-2015.txt": "THE HOLIDAY SCHEME 2015. This scheme sets out paid holiday.",
    "holiday-2015.1.txt": "THE HOLIDAY SCHEME 2015, amended.",
}
_CHAIN_DOCS = "The leave policy of 2020 names the older scheme it replaces. Which document holds that older scheme?"


def test_a_chain_over_documents_answered_with_the_document_it_starts_from_is_sent_on() -> None:
    """A 1.5B root asked which file holds the license that LGPL 2.1 succeeds read LGPL 2.1, got its own
    title back from the sub-model, and answered with LGPL 2.1's own key."""
    note = refusal("leave-2020.txt", _CHAIN_DOCS, _POLICIES)
    assert note is not None and "'leave-2020.txt' is the document the question starts from" in note
    assert refusal("holiday-2015.txt", _CHAIN_DOCS, _POLICIES) is None
    q = "The text of the LGPL version 2.1 names the earlier license it succeeds. Which file holds that earlier license?"
    licenses = {"LGPL-2.1": "...", "LGPL-2": "...", "LGPL-3": "..."}
    assert refusal("LGPL-2.1", q, licenses) is not None
    assert refusal("LGPL-2", q, licenses) is None  # '2' is not read out of '2.1'
    assert refusal("LGPL-3", q, licenses) is None
    assert refusal("leave-2020.txt", "Which document is the leave policy of 2020?", _POLICIES) is None  # no chain


def test_a_name_inside_a_module_is_sent_back_with_the_module_file() -> None:
    q = "`ThreadingHTTPServer` gets its threading from a mix-in. In which file is that mix-in defined?"
    keys = {"socketserver.py": "", "http/server.py": ""}
    assert "Did you mean 'socketserver.py'?" in not_a_key("socketserver.ThreadingMixIn", q, keys)


def test_each_form_rule_sends_back_one_answer_and_two_rules_may_in_one_run(tmp_path: Path) -> None:
    """Sent on from the file it started in, a 1.5B root answered with the mix-in's dotted name: the
    second rule (not a key) must still hold after the first (first hop) was used."""
    from conftest import code
    from unbounded import RLM

    replies = iter([
        code('d = definitions("AirParcel")[0]\nprint(d.key, d.bases, "customs.CustomsRules")'),
        code('FINAL("shipping/air.py")'),
        code('FINAL("customs.CustomsRules")'),
        code('FINAL("customs.CustomsRules")'),
    ])
    lm = ScriptedLM(lambda messages: next(replies))
    trace = tmp_path / "t.jsonl"
    rlm = RLM(model=lm, sub_model=ScriptedLM(["yes"]), repl="inprocess", prompt_style="guided", trace=trace)
    result = rlm.run(_CHAIN_WHERE, _PARCELS)
    rules = [(c.get("rule"), c["refused"]) for c in checks(trace) if c["verdict"] == "rule"]
    assert rules == [("first_hop", True), ("not_a_key", True)]
    assert result.answer == "customs.CustomsRules"  # insisted on: taken, no loop
