"""Token streaming through the real SDKs (openai, anthropic, google-genai, litellm) against the
loopback fault server speaking each provider's server-sent events.

Every test asserts what the caller sees (the deltas, the last delta's completion or the error) and
what the server saw (how many requests, whether the client hung up early).
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from fault_server import FaultServer, Received, cut, empty, error, ok, stall, stream_error
from unbounded.errors import ModelConnectionError, ModelError, ModelTimeoutError, RateLimitError, ServerError
from unbounded.models import Message, anthropic_backend, gemini_backend, openai_backend
from unbounded.models.base import Completion, Delta, LMBase
from unbounded.models.retry import RetryPolicy

pytestmark = [pytest.mark.network, pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")]

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, read_timeout=1.0, connect_timeout=2.0)
Q = [Message("system", "Answer briefly."), Message("user", "What is 2 + 2?")]
PIECES = ["The ", "answer ", "is ", "4."]


def _openai(server: FaultServer, policy: RetryPolicy) -> LMBase:
    return openai_backend.create_openai(
        "gpt-4.1-mini", {"api_key": "sk-test", "base_url": server.openai_url, "retry_policy": policy}
    )


def _compatible(server: FaultServer, policy: RetryPolicy) -> LMBase:
    return openai_backend.create_compatible(f"qwen2.5-coder@{server.openai_url}", {"retry_policy": policy})


def _anthropic(server: FaultServer, policy: RetryPolicy) -> LMBase:
    return anthropic_backend.create(
        "claude-haiku-4-5", {"api_key": "sk-ant-test", "base_url": server.anthropic_url, "retry_policy": policy}
    )


def _gemini(server: FaultServer, policy: RetryPolicy) -> LMBase:
    return gemini_backend.create(
        "gemini-2.5-flash", {"api_key": "g-test", "base_url": server.gemini_url, "retry_policy": policy}
    )


def _litellm(server: FaultServer, policy: RetryPolicy) -> LMBase:
    from unbounded.models.litellm_backend import create

    return create("openai/gpt-4o-mini", {"api_key": "sk-test", "base_url": server.openai_url, "retry_policy": policy})


PROVIDERS: dict[str, Callable[[FaultServer, RetryPolicy], LMBase]] = {
    "openai": _openai,
    "compatible": _compatible,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "litellm": _litellm,
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> str:
    if request.param == "litellm" and importlib.util.find_spec("litellm") is None:
        pytest.skip("litellm not installed")
    return request.param


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


def make(provider: str, server: FaultServer, policy: RetryPolicy = FAST) -> LMBase:
    return PROVIDERS[provider](server, policy)


def expected_input(provider: str, fresh: int, cached: int) -> int:
    """Anthropic reports the fresh prompt only; the backend adds cache reads back (see the fault tests)."""
    return fresh + cached if provider == "anthropic" else fresh


async def collect(stream: AsyncIterator[Delta]) -> tuple[list[Delta], BaseException | None]:
    deltas: list[Delta] = []
    try:
        async for d in stream:
            deltas.append(d)
    except (ModelError, AssertionError) as exc:
        return deltas, exc
    return deltas, None


def final(deltas: list[Delta]) -> Completion:
    assert deltas and deltas[-1].completion is not None, "the last delta must carry the completion"
    assert all(d.completion is None for d in deltas[:-1])
    return deltas[-1].completion


async def wait_for(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


# -- the happy path -------------------------------------------------------------------------------


async def test_deltas_join_to_the_text_with_exact_usage(provider: str, server: FaultServer) -> None:
    server.script(ok(pieces=PIECES, input_tokens=120, output_tokens=7, cached_tokens=100))
    lm = make(provider, server)
    assert lm.abilities.streaming
    deltas, err = await collect(lm.astream(Q, max_tokens=50))
    assert err is None
    c = final(deltas)
    texts = [d.text for d in deltas if d.text]
    assert texts == PIECES  # token by token, as the server sent them
    assert "".join(d.text for d in deltas) == c.text == "The answer is 4."
    assert (c.usage.calls, c.usage.output_tokens, c.usage.cached_input_tokens) == (1, 7, 100)
    assert c.usage.input_tokens == expected_input(provider, 120, 100)
    if provider != "litellm":  # LiteLLM prices from its own table; the others are checked exactly
        assert c.usage.cost_usd == pytest.approx(lm.cost(c.usage))
    assert c.extra["attempts"] == 1
    assert server.count == 1 and server.received[0].stream
    await lm.aclose()


async def test_stream_completion_matches_complete(provider: str, server: FaultServer) -> None:
    server.script(
        ok(pieces=PIECES, input_tokens=30, output_tokens=4, finish_reason=None),
        ok("The answer is 4.", input_tokens=30, output_tokens=4),
    )
    lm = make(provider, server)
    deltas, err = await collect(lm.astream(Q))
    assert err is None
    streamed = final(deltas)
    whole = await lm.complete(Q)
    assert (streamed.text, streamed.finish_reason, streamed.model) == (whole.text, whole.finish_reason, whole.model)
    assert streamed.usage.to_dict() == whole.usage.to_dict()
    assert not server.received[1].stream
    await lm.aclose()


async def test_openai_request_asks_for_usage_in_the_stream(server: FaultServer) -> None:
    server.script(ok(pieces=PIECES))
    lm = make("openai", server)
    await collect(lm.astream(Q, max_tokens=12, temperature=0))
    body = server.received[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == 12 and body["temperature"] == 0


async def test_gemini_streams_from_stream_generate_content(server: FaultServer) -> None:
    server.script(ok(pieces=PIECES, thoughts_tokens=30, output_tokens=5))
    deltas, err = await collect(make("gemini", server).astream(Q))
    assert err is None
    assert server.received[0].path.split("?")[0].endswith("/models/gemini-2.5-flash:streamGenerateContent")
    assert "alt=sse" in server.received[0].path
    c = final(deltas)
    assert c.usage.output_tokens == 35 and c.extra["reasoning_tokens"] == 30  # thinking is billed as output


async def test_client_side_stop_sequences_never_stream_past_the_stop(server: FaultServer) -> None:
    """OpenAI reasoning models reject ``stop``: it is applied here, while streaming, without ever
    delivering text that turns out to be part of the stop sequence."""
    server.script(ok(pieces=["hi th", "ere ST", "OP and", " more"], output_tokens=9))
    lm = openai_backend.create_openai(
        "gpt-5-mini", {"api_key": "k", "base_url": server.openai_url, "retry_policy": FAST}
    )
    deltas, err = await collect(lm.astream(Q, stop=["STOP"]))
    assert err is None
    assert "stop" not in server.received[0].body
    assert [d.text for d in deltas if d.text] == ["hi th", "ere "]
    c = final(deltas)
    assert c.text == "hi there " and c.usage.output_tokens == 9  # read to the end for the usage


# -- retries before the first delta ----------------------------------------------------------------


async def test_rate_limit_before_the_first_chunk_is_retried(provider: str, server: FaultServer) -> None:
    server.script(error(429, retry_after=0.3), ok(pieces=PIECES, input_tokens=11, output_tokens=3))
    deltas, err = await collect(make(provider, server).astream(Q))
    assert err is None
    c = final(deltas)
    assert c.text == "The answer is 4."
    assert server.count == 2
    first, second = server.received
    assert second.at - first.at >= 0.3  # Retry-After honoured
    assert (c.usage.calls, c.usage.input_tokens, c.usage.output_tokens) == (1, 11, 3)
    assert c.extra["attempts"] == 2


async def test_a_stream_cut_before_any_text_is_retried(provider: str, server: FaultServer) -> None:
    server.script(cut("The answer is 4.", after=0), ok(pieces=PIECES, input_tokens=12, output_tokens=4))
    deltas, err = await collect(make(provider, server).astream(Q))
    assert err is None
    assert final(deltas).text == "The answer is 4."
    assert server.count == 2


async def test_a_stall_before_the_first_chunk_times_out_and_is_retried(server: FaultServer) -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, read_timeout=0.4, connect_timeout=2.0)
    server.script(stall(5.0), ok(pieces=PIECES))
    started = time.monotonic()
    deltas, err = await collect(make("anthropic", server, policy).astream(Q))
    assert err is None and final(deltas).text == "The answer is 4."
    assert server.count == 2 and time.monotonic() - started < 3.0


async def test_billed_empty_stream_is_retried_and_counted(provider: str, server: FaultServer) -> None:
    server.script(empty(input_tokens=50, output_tokens=3), ok(pieces=PIECES, input_tokens=10, output_tokens=2))
    deltas, err = await collect(make(provider, server).astream(Q))
    assert err is None
    c = final(deltas)
    assert server.count == 2
    assert (c.usage.calls, c.usage.input_tokens, c.usage.output_tokens) == (1, 60, 5)
    assert c.extra["billed_failed_attempts"]["input_tokens"] == 50


async def test_error_event_before_any_text_is_retried(server: FaultServer) -> None:
    server.script(stream_error(529, "Overloaded", after=0), ok(pieces=PIECES))
    deltas, err = await collect(make("anthropic", server).astream(Q))
    assert err is None and final(deltas).text == "The answer is 4."
    assert server.count == 2


# -- failures after text was delivered --------------------------------------------------------------


async def test_a_cut_after_some_chunks_raises_a_clear_error(provider: str, server: FaultServer) -> None:
    server.script(cut("one two three four five", after=2), ok("never sent"))
    deltas, err = await collect(make(provider, server).astream(Q))
    assert [d.text for d in deltas] == ["one ", "two "]
    assert isinstance(err, ModelConnectionError), err
    assert err.kind == "connection" and err.retryable
    message = str(err)
    assert "after 8 characters" in message and "partial text" in message and "not retried" in message
    assert "make the call again" in message
    assert server.count == 1  # the caller has seen text: no second attempt


async def test_an_error_event_after_text_raises_its_kind(provider: str, server: FaultServer) -> None:
    server.script(stream_error(529, "Overloaded", after=2, text="one two three"), ok("never sent"))
    deltas, err = await collect(make(provider, server).astream(Q))
    assert [d.text for d in deltas] == ["one ", "two "]
    # LiteLLM turns an error event inside the stream into its APIConnectionError.
    assert isinstance(err, ModelConnectionError if provider == "litellm" else ServerError), err
    assert "Overloaded" in str(err) and "after 8 characters" in str(err)
    assert server.count == 1


async def test_a_silent_server_mid_stream_times_out(server: FaultServer) -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, read_timeout=0.3, connect_timeout=2.0)
    server.script(ok(pieces=["first ", "second"], delay=2.0))
    deltas, err = await collect(make("openai", server, policy).astream(Q))
    assert [d.text for d in deltas] == ["first "]
    assert isinstance(err, ModelTimeoutError | ModelConnectionError), err
    assert server.count == 1


async def test_rate_limit_that_persists_raises_rate_limit_error(server: FaultServer) -> None:
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, read_timeout=1.0)
    server.script(error(429), error(429), ok("never"))
    deltas, err = await collect(make("gemini", server, policy).astream(Q))
    assert deltas == [] and isinstance(err, RateLimitError)
    assert server.count == 2


# -- cancellation ---------------------------------------------------------------------------------


def slow(n: int = 200) -> Any:
    return ok(pieces=[f"w{i} " for i in range(n)], delay=0.02)


async def _closed_early(server: FaultServer) -> Received:
    rec = server.received[0]
    assert await wait_for(lambda: rec.finished_at is not None), "the server never saw the client leave"
    assert rec.disconnected and rec.pieces_sent < 200
    return rec


async def test_closing_the_stream_closes_the_connection(provider: str, server: FaultServer) -> None:
    server.script(slow())
    lm = make(provider, server)
    stream = lm.astream(Q)
    got = [await anext(stream) for _ in range(3)]
    assert [d.text for d in got] == ["w0 ", "w1 ", "w2 "]
    started = time.monotonic()
    await stream.aclose()
    rec = await _closed_early(server)
    assert rec.finished_at is not None and rec.finished_at - started < 1.0
    await lm.aclose()


async def test_cancelling_the_consumer_closes_the_stream(provider: str, server: FaultServer) -> None:
    server.script(slow())
    lm = make(provider, server)
    seen: list[str] = []

    async def consume() -> None:
        async for d in lm.astream(Q):
            seen.append(d.text)

    task = asyncio.create_task(consume())
    assert await wait_for(lambda: len(seen) >= 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _closed_early(server)
    await lm.aclose()


async def test_breaking_out_of_the_loop_closes_the_stream(server: FaultServer) -> None:
    server.script(slow(), ok(pieces=PIECES))
    lm = make("anthropic", server)
    async with __import__("contextlib").aclosing(lm.astream(Q)) as stream:
        async for d in stream:
            if d.text == "w1 ":
                break
    await _closed_early(server)
    deltas, err = await collect(lm.astream(Q))  # the client is still usable
    assert err is None and final(deltas).text == "The answer is 4."
