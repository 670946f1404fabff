"""The RLM loop with a scripted root model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from conftest import code
from unbounded import RLM, Budget
from unbounded.errors import BudgetExceeded, UnknownModelError
from unbounded.models import Completion, Message, ScriptedLM, Usage
from unbounded.models.base import Abilities
from unbounded.trace import read_trace


def test_multi_turn_grep_then_final(haystack: str, repl_kind: str, tmp_path: Path) -> None:
    root = ScriptedLM(
        [
            code("hits = grep('magic number')\nprint(hits)"),
            code("import re\nFINAL(re.search(r'\\d+', hits[0].text).group())"),
        ]
    )
    result = RLM(model=root, repl=repl_kind, trace=tmp_path / "t.jsonl").run("What is the magic number?", haystack)
    assert result.answer == "4817"
    assert result.status == "final"
    assert result.iterations == 2
    # The root never saw the context, only metadata and truncated outputs.
    for msgs in root.calls:
        assert sum(len(m.content) for m in msgs) < 20_000
    assert "13338" in root.calls[1][-1].content  # the grep output came back
    assert result.usage["scripted"].calls == 2


@pytest.mark.parametrize(
    "reply,expected",
    [
        ("I found it.\nFINAL(4817)", "4817"),
        ('FINAL("the answer is 4817")', "the answer is 4817"),
        (code("x = 4817\nFINAL_VAR('x')"), "4817"),
        (code("x = 'from var'") + "\nFINAL_VAR(x)", "from var"),
        ("```repl\nFINAL('repl fence')\n```", "repl fence"),
        ("```\nFINAL('bare fence')\n```", "bare fence"),
        ("```python\nFINAL('unterminated')", "unterminated"),
    ],
)
def test_every_final_form(reply: str, expected: str) -> None:
    result = RLM(model=ScriptedLM([reply]), repl="inprocess").run("q", "some context")
    assert (result.status, result.answer) == ("final", expected)


def test_errors_are_fed_back_and_the_run_continues() -> None:
    root = ScriptedLM([code("1/0"), code("undefined_name"), code("FINAL('recovered')")])
    result = RLM(model=root, repl="inprocess").run("q", "ctx")
    assert result.answer == "recovered"
    assert "ZeroDivisionError" in root.calls[1][-1].content
    assert "NameError" in root.calls[2][-1].content


def test_reply_without_code_gets_a_reminder() -> None:
    root = ScriptedLM(["Let me think about it.", code("FINAL('ok')")])
    result = RLM(model=root, repl="inprocess").run("q", "ctx")
    assert result.answer == "ok"
    assert "no ```python block" in root.calls[1][-1].content


def test_turns_run_out_then_forced_final() -> None:
    root = ScriptedLM([code("print('looking')")] * 3 + ["FINAL(best guess)"])
    result = RLM(model=root, repl="inprocess", budget=Budget(max_iterations=3)).run("q", "ctx")
    assert result.status == "max_iterations"
    assert result.answer == "best guess"
    assert "out of turns" in root.calls[-1][-1].content
    assert len(root.calls) == 4


def test_recursion_depth_two_each_with_own_repl(repl_kind: str, tmp_path: Path) -> None:
    def reply(messages: list[Message]) -> str:
        first = messages[1].content
        last = messages[-1].content
        if "Question: top" in first:
            if "child says" in last:
                return code("FINAL(result)")
            return code(
                "secret = 'root-only'\nresult = 'child says ' + rlm_query('middle', context[:50])\nprint(result)"
            )
        if "Question: middle" in first:
            if "grandchild" in last:
                return code("FINAL(r)")
            # Its own REPL: the root's variable is not here, and its context is the slice.
            return code(
                "assert 'secret' not in globals()\n"
                "assert len(context) == 50\n"
                "r = rlm_query('bottom', context[:10])\nprint('grandchild:', r)"
            )
        if "Question: bottom" in first:
            return code("FINAL('depth2-' + str(len(context)))")
        # At max depth rlm_query is a plain llm_query.
        return "leaf"

    root = ScriptedLM(reply)
    trace = tmp_path / "t.jsonl"
    result = RLM(model=root, repl=repl_kind, max_depth=2, trace=trace).run("top", "x" * 1000)
    assert result.status == "final", result
    assert result.answer == "child says depth2-10"
    starts = [e for e in read_trace(trace) if e.type == "rlm_start"]
    assert sorted(e.data["depth"] for e in starts) == [0, 1, 2]
    # Each child hangs under a sub-call of its parent's cell.
    by_id: dict = {}
    for e in read_trace(trace):
        by_id.setdefault(e.id, e)
    for s in starts:
        if s.data["depth"]:
            assert by_id[s.parent].type == "subcall_start"


def test_rlm_query_at_max_depth_is_llm_query() -> None:
    sub = ScriptedLM(lambda ms: "sub:" + ms[-1].content[-8:])
    root = ScriptedLM([code("print(rlm_query('what?', 'tiny ctx'))"), code("FINAL('x')")])
    RLM(model=root, sub_model=sub, repl="inprocess", max_depth=0).run("q", "ctx")
    assert len(sub.calls) == 1
    assert "tiny ctx" in sub.calls[0][0].content and "what?" in sub.calls[0][0].content


def test_llm_batch_keeps_order_and_runs_concurrently() -> None:
    sub = ScriptedLM(lambda ms: ms[-1].content.upper(), latency=0.05)
    root = ScriptedLM(
        [
            code("out = llm_batch([f'p{i}' for i in range(100)])\nprint(out[:3], out[-1], len(out))"),
            code("FINAL(out[42])"),
        ]
    )
    result = RLM(model=root, sub_model=sub, repl="process", batch_concurrency=50).run("q", "ctx")
    assert result.answer == "P42"
    assert "['P0', 'P1', 'P2'] P99 100" in root.calls[1][-1].content
    assert 10 < sub.max_in_flight <= 50
    assert result.usage["scripted"].calls == 102


def test_llm_batch_failed_item_is_an_error_string() -> None:
    def fail_some(ms: list[Message]) -> str:
        if "bad" in ms[-1].content:
            raise RuntimeError("backend exploded")
        return "fine"

    root = ScriptedLM([code("out = llm_batch(['good', 'bad', 'good'])\nprint(out)"), code("FINAL(out[1])")])
    sub = ScriptedLM(fail_some, name="sub")
    result = RLM(model=root, sub_model=sub, repl="inprocess").run("q", "ctx")
    assert result.answer.startswith("[error") and "backend exploded" in result.answer
    assert "'fine'" in root.calls[1][-1].content


def test_unknown_model_in_llm_query_is_an_error_not_a_fallback() -> None:
    root = ScriptedLM([code("print(llm_query('x', model='nope'))"), code("FINAL('done')")])
    sub = ScriptedLM(["sub"], name="sub")
    RLM(model=root, sub_model=sub, repl="inprocess").run("q", "ctx")
    assert "unknown model 'nope'" in root.calls[1][-1].content
    assert not sub.calls


def test_named_models_can_be_picked() -> None:
    big = ScriptedLM(["from big"], name="big")
    root = ScriptedLM([code("FINAL(llm_query('x', model='judge'))")])
    result = RLM(model=root, models={"judge": big}, repl="inprocess").run("q", "ctx")
    assert result.answer == "from big"
    assert set(result.usage) == {"scripted", "big"}


def test_unknown_model_spec_lists_known_backends() -> None:
    with pytest.raises(UnknownModelError) as err:
        RLM(model="nosuch/model")
    assert "local" in str(err.value) and "openai" in str(err.value)


def test_budget_calls_never_exceeded_under_concurrency() -> None:
    # strict: the batch is not refused up front (see the next test), so 500 concurrent calls meet the limit
    sub = ScriptedLM(lambda ms: "ok", latency=0.01)
    root = ScriptedLM([code("out = llm_batch(['p'] * 500)\nprint(sum(o == 'ok' for o in out))"), code("FINAL('x')")])
    rlm = RLM(model=root, sub_model=sub, repl="inprocess", budget=Budget(max_llm_calls=50, strict=True))
    with pytest.raises(BudgetExceeded):
        rlm.run("q", "ctx")
    assert len(root.calls) + len(sub.calls) <= 50


def test_a_batch_bigger_than_the_calls_left_is_refused_and_the_run_answers() -> None:
    sub = ScriptedLM(lambda ms: "ok", latency=0.01)
    root = ScriptedLM([code("out = llm_batch(['p'] * 500)"), code("out = llm_batch(['p'] * 40)\nprint(len(out))"),
                       code("FINAL(str(sum(o == 'ok' for o in out)))")])  # fmt: skip
    result = RLM(model=root, sub_model=sub, repl="inprocess", budget=Budget(max_llm_calls=50)).run("q", "ctx")
    assert result.status == "final" and result.answer == "40"
    assert len(sub.calls) == 40 and result.total_usage.calls == 43


def test_budget_tokens_never_exceeded_with_exact_counts() -> None:
    class Counting(ScriptedLM):
        abilities = Abilities(tokenizer=True)

        def count_tokens(self, messages):  # exact, like a real tokenizer
            return sum(len(m.content) for m in messages)

    def usage(ms: list[Message], text: str) -> Usage:
        return Usage(calls=1, input_tokens=sum(len(m.content) for m in ms), output_tokens=len(text))

    sub = Counting(lambda ms: "y" * 10, usage_fn=usage, latency=0.005)
    sub.default_max_tokens = 10
    root = Counting([code("out = llm_batch(['x' * 100] * 150)"), code("FINAL('x')")], usage_fn=usage)
    root.default_max_tokens = 50
    limit = 9_000
    result = RLM(model=root, sub_model=sub, repl="inprocess", budget=Budget(max_total_tokens=limit)).run("q", "c")
    assert result.status == "budget:max_total_tokens"
    assert result.total_usage.total_tokens <= limit


def test_budget_cost_requires_known_prices() -> None:
    unknown = ScriptedLM(["x"], price=None)
    with pytest.raises(UnknownModelError, match="price"):
        RLM(model=unknown, budget=Budget(max_cost_usd=1.0))


def test_budget_cost_limit_holds() -> None:
    priced = ScriptedLM(lambda ms: "ok", price=(1000.0, 1000.0, 100.0), latency=0.005)
    priced.default_max_tokens = 10
    root = ScriptedLM([code("out = llm_batch(['p'] * 100)"), code("FINAL('x')")])
    result = RLM(model=root, sub_model=priced, repl="inprocess", budget=Budget(max_cost_usd=0.5)).run("q", "c")
    assert result.status == "budget:max_cost_usd"
    assert result.total_usage.cost_usd is not None and result.total_usage.cost_usd <= 0.5


def test_budget_wall_seconds() -> None:
    root = ScriptedLM([code("import time\ntime.sleep(0.3)")] * 50, latency=0.01)
    result = RLM(model=root, repl="inprocess", budget=Budget(max_seconds=0.5, max_iterations=50)).run("q", "c")
    assert result.status == "budget:max_seconds"
    assert result.elapsed < 2.0


def test_budget_strict_raises() -> None:
    root = ScriptedLM([code("print(1)")] * 5)
    with pytest.raises(BudgetExceeded):
        RLM(model=root, repl="inprocess", budget=Budget(max_llm_calls=2, strict=True)).run("q", "c")


def test_budget_is_shared_by_the_whole_tree() -> None:
    def reply(ms: list[Message]) -> str:
        if len(ms) == 1:
            return "leaf"
        if "Question: child" in ms[1].content:
            return code("print(llm_batch(['x'] * 5))")
        return code("print(rlm_batch([('child', 'a'), ('child', 'b'), ('child', 'c')]))")

    lm = ScriptedLM(reply, latency=0.001)
    result = RLM(model=lm, repl="inprocess", budget=Budget(max_llm_calls=30, max_iterations=4)).run("root", "ctx")
    assert result.status == "budget:max_llm_calls"
    assert result.total_usage.calls == len(lm.calls) <= 30


def test_tools_are_proxied_and_listed(repl_kind: str) -> None:
    calls = []

    def lookup(key: str) -> str:
        """Return the stored value for key."""
        calls.append(key)
        return f"value-of-{key}"

    async def alookup(key: str) -> int:
        """Async tools work too."""
        return len(key)

    root = ScriptedLM([code("FINAL(lookup('k1') + '/' + str(alookup('abc')))")])
    result = RLM(model=root, repl=repl_kind, tools=[lookup, alookup]).run("q", "ctx")
    assert result.answer == "value-of-k1/3"
    assert calls == ["k1"]
    system = root.calls[0][0].content
    assert "lookup(key: str) -> str" in system and "Return the stored value for key." in system


def test_sub_calls_disabled() -> None:
    root = ScriptedLM([code("print(llm_query('x'))"), code("FINAL('done')")])
    RLM(model=root, repl="inprocess", sub_calls=False).run("q", "ctx")
    assert "llm_query" not in root.calls[0][0].content
    assert "NameError" in root.calls[1][-1].content


def test_model_error_ends_with_error_status() -> None:
    from unbounded.errors import ModelError

    def boom(ms):
        raise ModelError("server said no", kind="server")

    result = RLM(model=ScriptedLM(boom), repl="inprocess").run("q", "ctx")
    assert result.status == "error:server"
    assert "server said no" in result.error


def test_trace_is_a_tree_with_usage(tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    root = ScriptedLM([code("print(llm_query('hello'))"), code("FINAL('done')")])
    RLM(model=root, repl="inprocess", trace=trace).run("q", "ctx")
    events = read_trace(trace)
    types = [e.type for e in events]
    assert types[0] == "run_start" and types[-1] == "run_end"
    assert events[0].data["schema"] == 2
    for t in ("rlm_start", "lm_request", "lm_response", "cell", "subcall_start", "subcall_end", "rlm_end"):
        assert t in types
    ids = {e.id for e in events}
    for e in events:
        assert e.parent is None or e.parent in ids
    sub_lm = next(e for e in events if e.type == "lm_request" and e.data["purpose"] == "sub")
    assert next(e for e in events if e.id == sub_lm.parent).type == "subcall_start"
    assert events[-1].data["usage"]["scripted"]["calls"] == 3
    # Each line is valid JSON on its own.
    for line in trace.read_text().splitlines():
        json.loads(line)


def test_trace_survives_a_crash(tmp_path: Path) -> None:
    trace = tmp_path / "crash.jsonl"

    def explode(ms):
        if len(ms) > 3:
            raise KeyError("unexpected")
        return code("x = 1")

    with pytest.raises(KeyError):
        RLM(model=ScriptedLM(explode), repl="inprocess", trace=trace).run("q", "ctx")
    events = read_trace(trace)
    assert events[-1].type == "run_end"
    assert events[-1].data["status"] == "error:KeyError"
    assert any(e.type == "cell" for e in events)


def test_secrets_not_in_trace(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    RLM(model=ScriptedLM([code("FINAL(1)")]), repl="inprocess", trace=trace, model_options={"api_key": "sk-zzz"}).run(
        "q", "c"
    )
    assert "sk-zzz" not in trace.read_text()


def test_history_is_trimmed_to_the_window() -> None:
    root = ScriptedLM([code("print('y' * 3000)")] * 12 + [code("FINAL('ok')")], context_window=4000)
    result = RLM(model=root, repl="inprocess", budget=Budget(max_iterations=20), prompt_style="full").run("q", "c")
    assert result.answer == "ok"
    last = root.calls[-1]
    assert sum(len(m.content) for m in last) < 4000 * 3
    assert last[0].role == "system" and "Question: q" in last[1].content
    assert any("omitted" in m.content for m in last)


def test_arun_async_core_and_concurrent_runs() -> None:
    async def main() -> list[str | None]:
        rlms = [RLM(model=ScriptedLM([code(f"FINAL('r{i}')")]), repl="process") for i in range(3)]
        results = await asyncio.gather(*(r.arun("q", "ctx") for r in rlms))
        return [r.answer for r in results]

    assert asyncio.run(main()) == ["r0", "r1", "r2"]


def test_completion_drop_in_form() -> None:
    root = ScriptedLM([code("FINAL(context.split()[-1])")])
    result = RLM(model=root, repl="inprocess").completion("Please repeat the last word: banana")
    assert result.answer == "banana"


def test_run_inside_a_running_loop() -> None:
    async def main() -> str | None:
        return RLM(model=ScriptedLM([code("FINAL('nested')")]), repl="inprocess").run("q", "c").answer

    assert asyncio.run(main()) == "nested"


def test_scripted_completion_objects_and_usage() -> None:
    comp = Completion(code("FINAL('c')"), Usage(calls=1, input_tokens=7, output_tokens=3, cost_usd=0.5))
    result = RLM(model=ScriptedLM([comp]), repl="inprocess").run("q", "c")
    assert result.usage["scripted"].input_tokens == 7 and result.usage["scripted"].cost_usd == 0.5


def test_a_blind_first_answer_is_refused_once(haystack: str) -> None:
    """A literal FINAL before any code has read a context longer than its preview is a guess (the
    1.5B model answered "12345" from a question's "e.g."); it is refused once with a note."""
    root = ScriptedLM(
        [
            code('FINAL("12345")'),
            code("hits = grep('magic number')\nprint(hits[0].text)"),
            code("FINAL('4817')"),
        ]
    )
    result = RLM(model=root, repl="inprocess").run("What is the magic number?", haystack)
    assert (result.status, result.answer, result.iterations) == ("final", "4817", 3)
    assert "not accepted" in root.calls[1][-1].content


@pytest.mark.parametrize(
    "first",
    [
        code("FINAL(grep('magic number')[0].text.split()[-1].rstrip('.'))"),  # computed from the context
        "FINAL(4817)",  # text form: refused once, then taken
    ],
)
def test_computed_or_repeated_answers_are_taken(haystack: str, first: str) -> None:
    root = ScriptedLM([first, "FINAL(4817)"])
    result = RLM(model=root, repl="inprocess").run("What is the magic number?", haystack)
    assert result.status == "final"
    assert result.answer == "4817"
    assert len(root.calls) == (1 if first.startswith("```") else 2)


def test_a_short_context_shown_in_full_may_be_answered_at_once() -> None:
    result = RLM(model=ScriptedLM([code("FINAL('42')")]), repl="inprocess").run("q", "the answer is 42")
    assert (result.status, result.answer, result.iterations) == ("final", "42", 1)


def test_compact_style_refuses_once_a_literal_answer_it_was_never_shown(haystack: str) -> None:
    """The 1.5B model, having printed unrelated text, answered a made-up UUID; an answer that occurs
    nowhere in the question or in any output is refused once, then taken if the model insists."""
    root = ScriptedLM(
        [
            code("print(grep('fox')[0].text)"),
            code("FINAL('32145678-90ab-cdef')"),
            code("print(grep('magic number')[0].text)"),
            code("FINAL('4817')"),
        ]
    )
    result = RLM(model=root, repl="inprocess", prompt_style="compact").run("What is the magic number?", haystack)
    assert (result.status, result.answer, result.iterations) == ("final", "4817", 4)
    assert "'32145678-90ab-cdef' is not in anything your code has printed" in root.calls[2][-1].content

    tuple_answer = ScriptedLM([code("print(grep('magic number')[0].text)"), code("FINAL((10, 20, 30))"), "FINAL(4817)"])
    result = RLM(model=tuple_answer, repl="inprocess", prompt_style="compact").run("What is the number?", haystack)
    assert (result.status, result.answer) == ("final", "4817")
    assert "'(10, 20, 30)' is not in anything" in tuple_answer.calls[2][-1].content

    insisting = ScriptedLM([code("print(1)"), "FINAL(my own words)", "FINAL(my own words)"])
    result = RLM(model=insisting, repl="inprocess", prompt_style="compact").run("q?", haystack)
    assert (result.status, result.answer, result.iterations) == ("final", "my own words", 3)


def test_literal_answers_that_were_shown_are_taken_at_once(haystack: str) -> None:
    root = ScriptedLM([code("print(grep('magic number')[0].text)"), 'FINAL("4817")'])
    result = RLM(model=root, repl="inprocess", prompt_style="compact").run("What is the magic number?", haystack)
    assert (result.status, result.answer, result.iterations) == ("final", "4817", 2)
    # The full prompt (large models) never second-guesses an answer after the first turn.
    root = ScriptedLM([code("print(1)"), 'FINAL("a summary in my own words")'])
    result = RLM(model=root, repl="inprocess").run("What is it about?", haystack)
    assert (result.status, result.iterations) == ("final", 2)


def test_compact_style_names_the_questions_own_words_when_the_example_is_copied(haystack: str) -> None:
    """Seen with the 1.5B model: the worked example's search, terms and all, repeated until the turns
    ran out. The output now says so and names the question's distinctive words instead."""
    copied = code('for term in ["Rhodes-Ward", "Ward", "Rhodes"]:\n    print(term, len(grep(term)))')
    root = ScriptedLM([copied, copied, code("print(grep('magic number')[0].text)"), code("FINAL('4817')")])
    result = RLM(model=root, repl="inprocess", prompt_style="compact").run(
        "What is the magic number of the Zorbel archive?", haystack
    )
    assert (result.status, result.answer) == ("final", "4817")
    shown = root.calls[1][-1].content
    assert "'Rhodes-Ward', 'Ward', 'Rhodes': words from the worked example" in shown
    assert "such as 'Zorbel'" in shown
    # The more specific note stands in for the repeated-code one on the second, identical turn.
    assert "words from the worked example" in root.calls[2][-1].content
    assert "same code as your previous reply" not in root.calls[2][-1].content
    assert "worked example" not in root.calls[3][-1].content
    # The full prompt shows no worked example, so it never says this.
    root = ScriptedLM([copied, code("FINAL('x')")])
    RLM(model=root, repl="inprocess").run("What is the magic number of the Zorbel archive?", haystack)
    assert "worked example" not in root.calls[1][-1].content
