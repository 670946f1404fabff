"""Sessions: one loaded context, question after question, variables kept; save and restore; the chat CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import code, live_children
from unbounded import RLM, Budget
from unbounded.models import Message, ScriptedLM
from unbounded.session import SessionError
from unbounded.trace import read_trace


def question_of(messages: list[Message]) -> str:
    """The question an RLM was asked (the last line of its first user message that starts with it)."""
    first = next(m.content for m in messages if m.role == "user" and "Question:" in m.content)
    return first.rsplit("Question:", 1)[1].split("\n", 1)[0].strip()


def session_model() -> ScriptedLM:
    def reply(messages: list[Message]) -> str:
        q, last = question_of(messages), messages[-1].content
        if q == "remember":
            if "stored" in last:
                return code("FINAL('remembered')")
            return code("notes = {'first': context[:5]}\nprint('stored', notes)")
        if q == "recall":
            return code("FINAL(notes['first'] + ' / ' + str(len(history)) + ' / ' + history[0]['answer'])")
        if q == "count":
            return code("FINAL(str(len(history)))")
        return code("FINAL('?')")

    return ScriptedLM(reply)


def test_variables_and_history_persist_between_questions(repl_kind: str, tmp_path: Path) -> None:
    trace = tmp_path / "s.jsonl"
    lm = session_model()
    rlm = RLM(model=lm, repl=repl_kind, trace=trace)
    with rlm.session("hello world") as s:
        assert s.ask("remember").answer == "remembered"
        second = s.ask("recall")
        assert (second.status, second.answer) == ("final", "hello / 1 / remembered")
        assert s.history == [
            {"question": "remember", "answer": "remembered", "status": "final"},
            {"question": "recall", "answer": "hello / 1 / remembered", "status": "final"},
        ]
    # The second question's prompt named the first, with its answer.
    recall_prompt = next(c for c in lm.calls if question_of(c) == "recall")
    assert "Earlier in this session" in recall_prompt[-1].content and "remembered" in recall_prompt[-1].content
    # One trace: one run per question, one REPL (no second rlm worker start).
    events = read_trace(trace)
    runs = [e for e in events if e.type == "run_start"]
    assert len(runs) == 2 and len({e.data["session"] for e in runs}) == 1
    assert [e.data["status"] for e in events if e.type == "run_end"] == ["final", "final"]


async def test_the_async_form_and_a_closed_session(repl_kind: str) -> None:
    rlm = RLM(model=session_model(), repl=repl_kind)
    async with rlm.asession("hello world") as s:
        await s.aask("remember")
        assert (await s.aask("count")).answer == "1"
    with pytest.raises(SessionError, match="closed"):
        await s.aask("count")


def test_the_context_is_loaded_once() -> None:
    """The second question does not start a worker or load the context again."""
    rlm = RLM(model=session_model(), repl="process")
    with rlm.session("x" * 2_000_000) as s:
        pid = s._repl.pid  # the worker that holds the context
        s.ask("remember")
        s.ask("count")
        assert s._repl.pid == pid
    assert not live_children()


def test_budget_per_question_or_per_session() -> None:
    def busy(messages: list[Message]) -> str:
        return code("print(1)")

    per_question = RLM(model=ScriptedLM(busy), repl="inprocess", budget=Budget(max_llm_calls=3))
    with per_question.session("ctx") as s:
        assert [str(s.ask(f"q{i}").status) for i in range(2)] == ["budget:max_llm_calls"] * 2
    shared = RLM(model=ScriptedLM(busy), repl="inprocess", budget=Budget(max_llm_calls=3))
    with shared.session("ctx", budget="session") as s:
        first = s.ask("q0")
        second = s.ask("q1")
    assert first.status == "budget:max_llm_calls" and first.total_usage.calls == 3
    assert second.status == "budget:max_llm_calls" and second.total_usage.calls == 0  # nothing left


def test_save_and_restore_keep_questions_answers_and_picklable_variables(tmp_path: Path, repl_kind: str) -> None:
    data = tmp_path / "notes.txt"
    data.write_text("hello world, a context on disk")
    saved = tmp_path / "session.json"

    def reply(messages: list[Message]) -> str:
        q, last = question_of(messages), messages[-1].content
        if q == "remember":
            if "stored" in last:
                return code("FINAL('remembered')")
            return code("notes = {'first': context[:5]}\ncounter = 41\nf = lambda x: x\nprint('stored')")
        return code("FINAL(f\"{notes['first']} {counter + 1} {'f' in dir()} {len(history)}\")")

    rlm = RLM(model=ScriptedLM(reply), repl=repl_kind)
    with rlm.session(data) as s:
        s.ask("remember")
        dropped = s.save(saved)
    assert dropped == ["f"]  # a lambda defined in a cell does not pickle: named, not kept
    assert json.loads(saved.read_text())["turns"][0]["answer"] == "remembered"
    with rlm.restore(saved) as again:  # the context came from a file: it is loaded from there again
        assert again.history[0]["question"] == "remember"
        assert again.ask("recall").answer == "hello 42 False 1"


def test_restore_needs_the_context_when_it_was_not_a_file(tmp_path: Path) -> None:
    rlm = RLM(model=session_model(), repl="inprocess")
    with rlm.session("in memory") as s:
        s.ask("remember")
        s.save(tmp_path / "s.json")
    with pytest.raises(SessionError, match="pass it again"):
        rlm.restore(tmp_path / "s.json")
    with rlm.restore(tmp_path / "s.json", "in memory") as again:
        assert again.ask("recall").answer.startswith("in me")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SessionError, match="cannot read"):
        rlm.restore(tmp_path / "bad.json", "x")


def test_a_cancelled_question_leaves_the_session_usable() -> None:
    def reply(messages: list[Message]) -> str:
        if question_of(messages) == "slow":
            return code("import time\ntime.sleep(30)")
        return code("FINAL('still here')")

    rlm = RLM(model=ScriptedLM(reply), repl="process")

    async def go() -> str:
        async with rlm.asession("ctx") as s:
            task = asyncio.ensure_future(s.aask("slow"))
            await asyncio.sleep(1.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return (await s.aask("fast")).answer

    assert asyncio.run(go()) == "still here"


def test_chat_cli_answers_question_after_question(tmp_path: Path) -> None:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([code("x = len(context)\nFINAL(str(x))"), code("FINAL('again ' + str(x))")]))
    data = tmp_path / "data.txt"
    data.write_text("twelve chars")
    proc = subprocess.run(
        [sys.executable, "-m", "unbounded", "chat", str(data), "--model", f"scripted/{replies}", "--repl", "inprocess"],
        input="how long?\nand again?\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["? 12", "? again 12"]
