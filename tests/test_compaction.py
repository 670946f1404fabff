"""Compaction: a long run on a small window summarises its older turns and still finishes."""

from __future__ import annotations

from pathlib import Path

from conftest import code
from unbounded import RLM, Budget
from unbounded.history import summary_prompt
from unbounded.models import Message, ScriptedLM
from unbounded.trace import read_trace

TURNS = 60


def long_run_model() -> ScriptedLM:
    def reply(messages: list[Message]) -> str:
        last = messages[-1].content
        if last.startswith("Below are earlier steps"):  # the sub-model asked for a summary
            return "The code counted lines in steps and kept the running total in `seen`."
        turn = sum(1 for m in messages if m.role == "assistant" and m.content.startswith("```"))
        if "seen = 59" in last or turn >= TURNS:
            return code("FINAL(str(seen))")
        return code("seen = globals().get('seen', -1) + 1\nprint('seen =', seen, 'x' * 600)")

    return ScriptedLM(reply, context_window=4096)


def test_a_60_turn_run_on_a_4k_window_finishes(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    lm = long_run_model()
    rlm = RLM(model=lm, repl="inprocess", trace=trace, budget=Budget(max_iterations=TURNS + 5, max_llm_calls=200))
    result = rlm.run("Count to 59.", "context")
    assert (result.status, result.answer) == ("final", "59")
    events = read_trace(trace)
    compactions = [e.data for e in events if e.type == "compaction"]
    assert compactions and all(c["ok"] for c in compactions)
    assert all(c["tokens_after"] < c["tokens_before"] for c in compactions)
    # Every root request fit the window (by the engine's own estimate of 3 characters a token).
    for request in (e.data for e in events if e.type == "lm_request" and e.data["purpose"] == "root"):
        assert request["input_chars"] / 3 < 4096
    # The REPL kept its variables: the answer is the 60th value of a variable set cell by cell.
    summarised = [c for c in lm.calls if c[-1].content.startswith("Below are earlier steps")]
    assert len(summarised) == len(compactions)


def test_compaction_off_drops_turns_instead(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    rlm = RLM(model=long_run_model(), repl="inprocess", trace=trace, compaction=None,
              budget=Budget(max_iterations=TURNS + 5, max_llm_calls=200))  # fmt: skip
    assert rlm.run("Count to 59.", "context").answer == "59"
    assert not [e for e in read_trace(trace) if e.type == "compaction"]


def test_the_summary_prompt_bounds_what_it_sends() -> None:
    turns = [Message("assistant", "x" * 10_000), Message("user", "y" * 10_000)]
    prompt = summary_prompt("q?", turns)
    assert len(prompt) < 14_000 and "middle steps left out" in prompt
