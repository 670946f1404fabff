"""Bugs found in a review of the engine's joints; each test failed before its fix."""

from __future__ import annotations

import asyncio
import sys
import tomllib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from conftest import code
from fault_server import FaultServer, error, ok
from unbounded import RLM, Budget
from unbounded.errors import ConfigError, ContextLengthError, ModelError, UnknownPriceError
from unbounded.models import Completion, Message, ScriptedLM, Usage
from unbounded.models.base import LMBase
from unbounded.models.registry import resolve_model
from unbounded.models.retry import RetryPolicy
from unbounded.repl.inprocess import InProcessREPL
from unbounded.status import RunStatus, StatusKind
from unbounded.trace import read_trace

ROOT = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, read_timeout=5.0, connect_timeout=2.0)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(default=error(418, "unscripted request")) as s:
        yield s


# 1. A remote model whose window fills: the engine trims the history and tries again.
@pytest.mark.network
def test_remote_context_length_error_trims_the_history_and_retries(server: FaultServer) -> None:
    noisy = code("print('x' * 3000)")
    server.script(
        ok(noisy),
        ok(noisy),
        ok(noisy),
        ok(noisy),
        error(400, "This model's maximum context length is 2048 tokens", code="context_length_exceeded"),
        ok(code("FINAL('done')")),
    )
    lm = resolve_model(
        "openai/gpt-4.1-mini", api_key="sk-test", base_url=server.openai_url, retry_policy=FAST, context_window=8192
    )
    result = RLM(model=lm, repl="inprocess").run("q", "some context")
    assert (result.status, result.answer) == ("final", "done")
    failed, retried = server.received[4], server.received[5]
    assert len(retried.body["messages"]) < len(failed.body["messages"])
    assert "omitted to fit the model's window" in str(retried.body["messages"])


def test_context_length_errors_are_one_class_for_every_backend() -> None:
    from unbounded.models.retry import AttemptError, _final_error

    err = _final_error(AttemptError("context_length", "too long", False, 400), 1, "openai/x", None)
    assert isinstance(err, ContextLengthError) and isinstance(err, ModelError)
    assert err.kind == "context_length"


def test_an_lm_that_raises_context_length_gets_a_shorter_history() -> None:
    seen: list[int] = []

    def reply(messages: list[Message]) -> str:
        seen.append(len(messages))
        if len(seen) == 5:
            raise ContextLengthError("prompt too long")
        if len(seen) >= 6:
            return code("FINAL('ok')")
        return code("print('y' * 2000)")

    lm = ScriptedLM(reply, context_window=6000)
    result = RLM(model=lm, repl="inprocess").run("q", "ctx")
    assert (result.status, result.answer) == ("final", "ok")
    assert seen[5] < seen[4]


# 2. A REPL instance would be shared by a child RLM and hang on its parent's running cell.
def test_a_repl_instance_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="factory"):
        RLM(model=ScriptedLM(["x"]), repl=InProcessREPL())  # type: ignore[arg-type]


def test_a_repl_factory_gives_each_rlm_its_own_repl() -> None:
    made: list[InProcessREPL] = []

    def factory() -> InProcessREPL:
        made.append(InProcessREPL())
        return made[-1]

    def reply(messages: list[Message]) -> str:
        if "Question: child" in messages[1].content:
            return code("FINAL('from child')")
        if "from child" in messages[-1].content:
            return code("FINAL(answer)")
        return code("answer = rlm_query('child', 'small context')\nprint(answer)")

    rlm = RLM(model=ScriptedLM(reply), repl=factory, max_depth=1)

    async def bounded() -> Any:
        return await asyncio.wait_for(rlm.arun("parent", "big context"), 30)

    result = asyncio.run(bounded())
    assert (result.status, result.answer) == ("final", "from child")
    assert len(made) == 2 and made[0] is not made[1]


# 3. Two runs appended to one trace file never share an id.
def test_trace_ids_are_unique_across_runs_in_one_file(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    for _ in range(2):
        RLM(model=ScriptedLM([code("print(1)"), code("FINAL('a')")]), repl="inprocess", trace=trace).run("q", "c")
    events = read_trace(trace)
    starts = [e.id for e in events if e.type not in ("run_end", "rlm_end", "lm_response", "subcall_end")]
    assert len(starts) == len(set(starts))
    assert len({e.id for e in events if e.type == "run_start"}) == 2


# 5. A cost limit with a model of unknown price fails at once, not on the first call.
class NoPrice(LMBase):
    name = "no-price"

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        return Completion(code("FINAL('x')"), Usage(1, 10, 10))


class ProtocolOnly:
    name = "protocol-only"
    max_concurrency = 4
    context_window = None

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        return Completion(code("FINAL('x')"), Usage(1, 10, 10, cost_usd=None))


@pytest.mark.parametrize("lm", [NoPrice(), ProtocolOnly()], ids=["LMBase", "protocol"])
def test_cost_limit_with_an_unpriced_model_is_refused_up_front(lm: Any) -> None:
    with pytest.raises(UnknownPriceError, match="price"):
        RLM(model=lm, budget=Budget(max_cost_usd=1.0), repl="inprocess")
    # Without a cost limit the same model runs.
    assert RLM(model=lm, repl="inprocess").run("q", "c").answer == "x"


# 6. bench report without matplotlib names the extra.
def test_bench_report_without_matplotlib_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from unbounded.bench.cli import cmd_report

    (tmp_path / "results.jsonl").write_text(
        '{"task": "niah", "size_tokens": 8192, "method": "direct", "item_id": "a", "model": "m", "score": 1.0,'
        ' "answer": "x", "gold": "x", "status": "ok", "seconds": 1.0, "calls": 1,'
        ' "usage": {"calls": 1, "input_tokens": 1, "output_tokens": 1, "cached_input_tokens": 0, "cost_usd": 0.0}}\n'
    )
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cmd_report([str(tmp_path)]) == 5
    assert "pip install 'unbounded[bench]'" in capsys.readouterr().err


# 7. grep's cap is said, and the true total is kept.
def test_a_capped_grep_says_so_and_carries_the_total() -> None:
    from unbounded.repl.helpers import grep

    text = "\n".join(f"hit {i}" for i in range(1500))
    found = grep("hit", text)
    assert len(found) == 1000 and found.total == 1500 and found.capped
    assert "capped: the first 1,000 of 1,500 matches" in repr(found)
    assert grep("hit", text, max_matches=None).total == 1500 and not grep("hit", text, max_matches=None).capped


def test_the_model_is_told_when_grep_was_capped(repl_kind: str) -> None:
    root = ScriptedLM([code("print(len(grep('hit')))"), code("FINAL('x')")])
    text = "\n".join(f"hit {i}" for i in range(1500))
    RLM(model=root, repl=repl_kind).run("How many hits?", text)
    shown = root.calls[1][-1].content
    assert "1000" in shown and "matched 1,500 lines but returned only the first 1,000" in shown


# 8. The rlms extra brings what the rlms method needs for local/ models.
def test_the_rlms_extra_brings_the_llama_cpp_server() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("llama-cpp-python[server]") for req in extras["rlms"])
    assert any(req.startswith("rlms") for req in extras["rlms"])


# Shape: abilities are declared, statuses typed, old names still work.
def test_prompt_style_follows_the_declared_size_not_the_spec_prefix() -> None:
    small = resolve_model("ollama/qwen2.5-coder:1.5b")
    big = resolve_model("ollama/llama3.1:70b")
    assert small.abilities.small and not big.abilities.small
    assert RLM(model=small).prompt_style == "guided"
    assert RLM(model=big).prompt_style == "full"
    assert RLM(model=resolve_model("ollama/qwen2.5-coder:1.5b", small=False)).prompt_style == "full"


def test_status_is_typed_and_still_a_string() -> None:
    result = RLM(model=ScriptedLM([code("print(1)")]), repl="inprocess", budget=Budget(max_llm_calls=1)).run("q", "c")
    assert isinstance(result.status, RunStatus)
    assert result.status.kind is StatusKind.BUDGET and result.status.detail == "max_llm_calls"
    assert result.status == "budget:max_llm_calls" and result.to_dict()["status"] == "budget:max_llm_calls"


def test_renamed_options_keep_working_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="max_total_tokens"):
        budget = Budget(max_tokens=10_000)
    assert budget.max_total_tokens == 10_000
    with pytest.warns(DeprecationWarning, match="shown_output_chars"):
        rlm = RLM(model=ScriptedLM(["x"]), max_output_chars=123)
    assert rlm.shown_output_chars == 123
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Budget(max_total_tokens=5)


# Found by the server: overlapping runs on one loop shared the model clients, and the first to end closed them.
def test_overlapping_runs_on_one_loop_keep_the_shared_clients_open() -> None:
    closed: list[int] = []

    class Client(ScriptedLM):
        async def aclose(self) -> None:
            closed.append(len(self.calls))

    async def reply(messages: list[Message]) -> str:
        if "Question: slow" in messages[-1].content:
            await asyncio.sleep(0.3)
        return code("FINAL('a')")

    lm = Client(reply)
    rlm = RLM(model=lm, repl="inprocess")

    async def go() -> list:
        slow = asyncio.ensure_future(rlm.arun("slow", "c"))
        await asyncio.sleep(0.01)
        fast = await rlm.arun("fast", "c")
        assert closed == []  # the other run is still going: nothing closed under it
        return [fast, await slow]

    results = asyncio.run(go())
    assert [r.answer for r in results] == ["a", "a"] and len(closed) == 1  # closed once, after the last
