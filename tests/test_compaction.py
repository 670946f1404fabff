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
    # The result counts them, and the input tokens they kept out of the root calls that followed.
    assert result.compactions == len(compactions)
    cut = sum(c["tokens_before"] - c["tokens_after"] for c in compactions)
    assert result.compaction_tokens_saved > cut, "every root call after a compaction sends less"


def test_a_bench_run_reports_what_compaction_saved(tmp_path: Path) -> None:
    from unbounded.bench.report import write_report
    from unbounded.bench.results import ResultRecord, ResultsFile, compaction_line

    def record(item: str, notes: dict) -> ResultRecord:
        return ResultRecord("niah", 8192, "rlm", item, "m", 1.0, "a", "a", "final", 1.0, input_tokens=3000, notes=notes)

    plain = record("i0", {})
    assert compaction_line([plain]) is None, "nothing compacted, nothing said"
    long = record("i1", {"compactions": 3, "compaction_tokens_saved": 9000})
    line = compaction_line([plain, long])
    assert line == (
        "compaction: 1 of 2 items compacted their history 3 times, ~9,000 input tokens saved "
        "(75% of what those items would have sent)"
    )
    results = ResultsFile(tmp_path / "results.jsonl")
    for r in (plain, long):
        results.append(r)
    report = write_report([tmp_path], plots=False)
    assert "## Compaction" in report.markdown and "~9,000 input tokens saved" in report.markdown


def test_compaction_off_drops_turns_instead(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    rlm = RLM(model=long_run_model(), repl="inprocess", trace=trace, compaction=None,
              budget=Budget(max_iterations=TURNS + 5, max_llm_calls=200))  # fmt: skip
    result = rlm.run("Count to 59.", "context")
    assert result.answer == "59" and (result.compactions, result.compaction_tokens_saved) == (0, 0)
    assert not [e for e in read_trace(trace) if e.type == "compaction"]


def test_the_summary_prompt_bounds_what_it_sends() -> None:
    turns = [Message("assistant", "x" * 10_000), Message("user", "y" * 10_000)]
    prompt = summary_prompt("q?", turns)
    assert len(prompt) < 14_000 and "middle steps left out" in prompt
