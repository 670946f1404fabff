"""A run as a stream of events, and cancelling a run: prompt, complete, nothing left behind."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from conftest import code, live_children
from unbounded import RLM, Budget
from unbounded.models import Message, ScriptedLM
from unbounded.trace import read_trace


def test_astream_yields_the_runs_events_then_the_result(repl_kind: str, tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    root = ScriptedLM([code("print(llm_query('hi'))"), code("FINAL('done')")])
    rlm = RLM(model=root, repl=repl_kind, trace=trace)

    async def go() -> list:
        return [e async for e in rlm.astream("q", "context")]

    events = asyncio.run(go())
    types = [e.type for e in events]
    assert types[0] == "run_start" and types[-2] == "run_end" and types[-1] == "result"
    for kind in ("rlm_start", "lm_request", "lm_response", "cell", "subcall_start", "subcall_end", "rlm_end"):
        assert kind in types
    result = events[-1].data["result"]
    assert (result.status, result.answer) == ("final", "done")
    # The same events the trace recorded, in the same order (plus the root's replies as token events).
    assert [e.id for e in read_trace(trace)] == [e.id for e in events[:-1] if e.type != "token"]


def test_the_sync_stream_is_the_same_stream(repl_kind: str) -> None:
    rlm = RLM(model=ScriptedLM([code("FINAL('x')")]), repl=repl_kind)
    events = list(rlm.stream("q", "context"))
    assert events[-1].type == "result" and events[-1].data["result"].answer == "x"


def slow_batch_model() -> tuple[ScriptedLM, ScriptedLM]:
    root = ScriptedLM([code("out = llm_batch(['p'] * 200)\nprint(len(out))"), code("FINAL('never')")])
    sub = ScriptedLM(lambda ms: "ok", latency=0.5, name="sub", max_concurrency=8)
    return root, sub


@pytest.mark.parametrize("how", ["cancel the task", "break out of the stream"])
def test_cancelling_during_a_200_item_llm_batch_stops_within_a_second(how: str, tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    root, sub = slow_batch_model()
    rlm = RLM(model=root, sub_model=sub, repl="process", trace=trace, budget=Budget(max_llm_calls=500))
    took: dict[str, float] = {}

    async def go() -> None:
        if how == "cancel the task":
            task = asyncio.ensure_future(rlm.arun("q", "context"))
            while sub.in_flight == 0:
                await asyncio.sleep(0.05)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            stream = rlm.astream("q", "context")
            async for event in stream:
                if event.type == "subcall_start":
                    break
            await asyncio.sleep(0.3)  # sub-calls are under way
            started = time.monotonic()
            await stream.aclose()
        took["s"] = time.monotonic() - started

    asyncio.run(go())
    assert took["s"] < 1.0, took
    assert sub.in_flight == 0  # every sub-call was cancelled
    assert len(sub.calls) < 200  # the batch did not run to its end
    assert not live_children()  # the worker is gone
    events = read_trace(trace)
    end = [e for e in events if e.type == "run_end"]
    assert len(end) == 1 and end[0].data["status"] == "interrupted"
    assert end[0].data["ledger"]["in_flight"] == 0  # every reservation was settled


def test_cancelling_a_long_cell_interrupts_it_and_keeps_the_trace(repl_kind: str, tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    rlm = RLM(model=ScriptedLM([code("import time\ntime.sleep(60)")]), repl=repl_kind, trace=trace)

    async def go() -> float:
        task = asyncio.ensure_future(rlm.arun("q", "context"))
        await asyncio.sleep(1.0)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(go()) < 1.0
    assert [e.data["status"] for e in read_trace(trace) if e.type == "run_end"] == ["interrupted"]
    assert not live_children()


def test_a_stream_of_a_failing_model_ends_with_an_error_status() -> None:
    def broken(messages: list[Message]) -> str:
        from unbounded.errors import ServerError

        raise ServerError("the server is down")

    events = list(RLM(model=ScriptedLM(broken), repl="inprocess").stream("q", "c"))
    result = events[-1].data["result"]
    assert result.status == "error:server" and "down" in result.error


def test_a_stream_carries_the_root_replies_as_token_events(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    replies = [code("x = 1\nprint(x)"), code("FINAL('done')")]
    rlm = RLM(model=ScriptedLM(replies), repl="inprocess", trace=trace)
    events = list(rlm.stream("q", "context"))
    tokens = [e for e in events if e.type == "token"]
    assert "".join(e.data["text"] for e in tokens) == "".join(replies)
    assert {e.data["purpose"] for e in tokens} == {"root"}
    assert not [e for e in read_trace(trace) if e.type == "token"]  # the file keeps the whole replies only
    # Without a stream, root calls are not streamed.
    plain = ScriptedLM(replies)
    RLM(model=plain, repl="inprocess").run("q", "context")
