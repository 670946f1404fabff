"""The code-agent baseline (``codeact``) on scripted models: window fitting, the Python tool, BM25 search,
no sub-calls, the turn limit, history trimming, and a bench run through the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from unbounded.bench.cli import main as bench_main
from unbounded.bench.methods import METHODS, MethodConfig, run_method
from unbounded.bench.methods.codeact import FORCE_ANSWER, OUTPUT_CHARS
from unbounded.bench.tasks import generate, score
from unbounded.models import Message, ScriptedLM, register_backend

NEEDLE = re.compile(r"One of the special magic \w+ for [\w-]+ is: ([\w-]+)\.")


def tokens(messages: list[Message]) -> int:
    return sum(len(m.content) // 4 + 4 for m in messages) + 2


def test_codeact_is_a_registered_method() -> None:
    assert "codeact" in METHODS


async def test_a_context_that_fits_is_shown_whole_and_a_reply_without_code_is_the_answer() -> None:
    item = generate("niah", 2_000, n=1, seed=0)[0]
    lm = ScriptedLM(lambda m: "Answer: " + NEEDLE.search(m[1].content).group(1))  # type: ignore[union-attr]
    result = await run_method("codeact", lm, item, MethodConfig(context_window=32_768, repl="inprocess"))
    assert score(item, result.answer) == 1.0
    assert result.status == "final" and result.calls == 1 and result.notes["truncated"] is False
    system, user = lm.calls[0]
    assert "shown below in full" in system.content and "search(query, k=5)" in system.content
    assert item.context in user.content and item.answer_format in user.content


async def test_search_finds_what_the_window_cut_off_and_the_agent_answers_from_it() -> None:
    item = generate("niah", 60_000, n=1, seed=2, depth=1.0)[0]  # the needle is at the very end
    key = item.metadata["key"]

    def agent(messages: list[Message]) -> str:
        if len(messages) == 2:
            assert NEEDLE.search(messages[1].content) is None  # the head shown does not hold it
            return (
                f"```python\nfor p in search({key!r} + ' special magic', k=3):\n    print(p['chunk'], p['text'])\n```"
            )
        found = NEEDLE.search(messages[-1].content)
        return f"Answer: {found.group(1) if found else 'not found'}"

    lm = ScriptedLM(agent, context_window=8_192)
    result = await run_method("codeact", lm, item, MethodConfig(repl="inprocess"))
    assert score(item, result.answer) == 1.0
    assert result.notes["truncated"] is True and result.notes["kept_chars"] < result.notes["total_chars"]
    assert result.notes["searches"] == 1 and result.notes["chunks"] > 10
    assert "its first" in lm.calls[0][0].content and "search finds the rest" in lm.calls[0][0].content
    assert all(tokens(call) <= 8_192 - 1_024 for call in lm.calls)


async def test_python_runs_final_is_accepted_and_there_are_no_sub_calls() -> None:
    item = generate("niah", 2_000, n=1, seed=0)[0]
    replies = [
        "```python\ntry:\n    llm_query('hi')\nexcept NameError as e:\n    print('no sub-calls:', e)\nprint(sum(range(10)))\n```",
        "```python\nFINAL(str(6 * 7))\n```",
    ]
    lm = ScriptedLM(replies)
    result = await run_method("codeact", lm, item, MethodConfig(repl="inprocess"))
    assert result.answer == "42" and result.status == "final" and result.calls == 2
    output = lm.calls[1][-1].content
    assert output.startswith("Output:") and "no sub-calls:" in output and "45" in output


async def test_bad_search_arguments_are_errors_the_agent_sees() -> None:
    item = generate("niah", 2_000, n=1, seed=0)[0]
    lm = ScriptedLM(["```python\nsearch('')\n```", "```python\nsearch('magic', k=0)\n```", "Answer: none"])
    result = await run_method("codeact", lm, item, MethodConfig(repl="inprocess"))
    assert result.status == "final" and result.notes["searches"] == 0
    assert "non-empty query" in lm.calls[1][-1].content
    assert "k must be a positive integer" in lm.calls[2][-1].content


async def test_out_of_turns_asks_once_for_the_answer() -> None:
    item = generate("niah", 2_000, n=1, seed=0)[0]

    def looping(messages: list[Message]) -> str:
        return "Answer: 7" if messages[-1].content == FORCE_ANSWER else "```python\nprint('still looking')\n```"

    lm = ScriptedLM(looping)
    result = await run_method("codeact", lm, item, MethodConfig(repl="inprocess", max_iterations=3))
    assert result.status == "max_iterations" and result.answer == "Answer: 7"
    assert result.calls == 4 and result.notes["iterations"] == 3


async def test_long_outputs_are_cut_and_old_turns_dropped_to_stay_in_the_window() -> None:
    item = generate("niah", 30_000, n=1, seed=1)[0]
    lm = ScriptedLM(
        lambda m: "Answer: done" if m[-1].content == FORCE_ANSWER else "```python\nprint('x' * 50_000)\n```",
        context_window=12_000,
    )
    result = await run_method("codeact", lm, item, MethodConfig(repl="inprocess", max_iterations=8))
    assert result.notes["turns_dropped"] > 0
    assert all(tokens(call) <= 12_000 - 1_024 for call in lm.calls)
    shown = lm.calls[1][-1].content
    assert len(shown) < OUTPUT_CHARS + 500 and "only part is shown" in shown
    assert any("earlier turn(s) omitted" in m.content for m in lm.calls[-1])
    assert lm.calls[-1][:2] == lm.calls[0][:2]  # the prompt and the context always stay


async def test_the_search_tool_works_from_the_sandboxed_worker() -> None:
    item = generate("niah", 60_000, n=1, seed=2, depth=1.0)[0]
    key = item.metadata["key"]
    lm = ScriptedLM([f"```python\nhits = search({key!r})\nprint(len(hits), hits[0]['text'])\n```", "Answer: x"])
    result = await run_method("codeact", lm, item, MethodConfig(repl="process", context_window=8_192))
    assert result.notes["searches"] == 1
    assert NEEDLE.search(lm.calls[1][-1].content)


def test_bench_run_with_codeact_through_the_cli(tmp_path: Path) -> None:
    def reply(messages: list[Message]) -> str:
        if len(messages) == 2:
            return "```python\nprint([p['chunk'] for p in search('special magic')])\n```"
        found = NEEDLE.search("\n".join(m.content for m in messages))
        return f"Answer: {found.group(1) if found else '?'}"

    def factory(rest: str, options: dict[str, Any]) -> ScriptedLM:
        return ScriptedLM(reply, name=f"codeacttest/{rest}")

    register_backend("codeacttest", factory)
    out = tmp_path / "run"
    argv = ["run", "--task", "niah", "--sizes", "8k", "--methods", "codeact", "--model", "codeacttest/m"]
    argv += ["-n", "2", "--repl", "inprocess", "--no-progress", "-q", "--out", str(out)]
    assert bench_main(argv) == 0
    records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r["method"] for r in records] == ["codeact", "codeact"]
    assert all(r["score"] == 1.0 and r["status"] == "final" and r["calls"] == 2 for r in records)
    trace = [json.loads(x) for x in (out / records[0]["trace"]).read_text().splitlines()]
    assert [e["type"] for e in trace] == ["lm_call", "lm_call"]
    assert trace[1]["messages"][-1]["content"].startswith("Output:")  # every turn is in the trace
    assert bench_main(["report", str(out), "--no-plots"]) == 0


@pytest.mark.parametrize("window", [4_096, 32_768])
async def test_every_prompt_fits_windows_of_any_size(window: int) -> None:
    item = generate("codeqa", 40_000, n=1, seed=0)[0]
    lm = ScriptedLM(["```python\nprint(search('def', k=20))\n```", "Answer: A"], context_window=window)
    result = await run_method("codeact", lm, item, MethodConfig(repl="inprocess"))
    assert result.answer == "Answer: A"
    assert all(tokens(call) <= window - 1_024 for call in lm.calls)
