"""Every fault, against every remote protocol, through the real SDKs and a loopback server.

Each test asserts the outcome (success or a ModelError of the right kind), the exact number of
requests the server received, and the exact usage on the returned Completion.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fault_server import FaultServer, drop, empty, error, malformed, ok, stall
from unbounded.errors import ModelError
from unbounded.models import Message, anthropic_backend, gemini_backend, openai_backend
from unbounded.models.retry import RetryPolicy

pytestmark = pytest.mark.network

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, read_timeout=0.4, connect_timeout=2.0)
Q = [Message("user", "What is 2 + 2?")]


def _openai(server: FaultServer, policy: RetryPolicy) -> Any:
    return openai_backend.create_openai(
        "gpt-4.1-mini", {"api_key": "sk-test", "base_url": server.openai_url, "retry_policy": policy}
    )


def _anthropic(server: FaultServer, policy: RetryPolicy) -> Any:
    return anthropic_backend.create(
        "claude-haiku-4-5",
        {"api_key": "sk-ant-test", "base_url": server.anthropic_url, "retry_policy": policy},
    )


def _gemini(server: FaultServer, policy: RetryPolicy) -> Any:
    return gemini_backend.create(
        "gemini-2.5-flash", {"api_key": "g-test", "base_url": server.gemini_url, "retry_policy": policy}
    )


PROVIDERS: dict[str, Callable[[FaultServer, RetryPolicy], Any]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


def make(provider: str, server: FaultServer, policy: RetryPolicy = FAST) -> Any:
    return PROVIDERS[provider](server, policy)


def expected_input(provider: str, fresh: int, cached: int) -> int:
    """Total prompt tokens as the backend reports them, given what the server scripted.

    OpenAI and Gemini report a total that includes cached tokens; Anthropic reports the fresh
    part only, and the backend adds the cache reads back in.
    """
    return fresh + cached if provider == "anthropic" else fresh


async def test_ok_usage_and_single_request(provider: str, server: FaultServer) -> None:
    server.script(ok("4", input_tokens=120, output_tokens=7, cached_tokens=100))
    lm = make(provider, server)
    c = await lm.complete(Q)
    assert c.text == "4"
    assert server.count == 1
    assert c.usage.calls == 1
    assert c.usage.input_tokens == expected_input(provider, 120, 100)
    assert c.usage.output_tokens == 7
    assert c.usage.cached_input_tokens == 100
    assert c.usage.cost_usd is not None and c.usage.cost_usd > 0
    assert c.usage.cost_usd == pytest.approx(lm.cost(c.usage))
    assert c.extra["attempts"] == 1
    assert not c.cached


async def test_rate_limit_honours_retry_after(provider: str, server: FaultServer) -> None:
    server.script(error(429, retry_after=0.4), ok("fine", input_tokens=11, output_tokens=3))
    lm = make(provider, server)
    c = await lm.complete(Q)
    assert c.text == "fine"
    assert server.count == 2
    first, second = server.received
    assert second.at - first.at >= 0.4
    assert (c.usage.calls, c.usage.input_tokens, c.usage.output_tokens) == (1, 11, 3)
    assert c.extra["attempts"] == 2


async def test_server_error_then_success(provider: str, server: FaultServer) -> None:
    server.script(error(500), ok("after 500", input_tokens=12, output_tokens=4))
    c = await make(provider, server).complete(Q)
    assert c.text == "after 500"
    assert server.count == 2
    assert (c.usage.calls, c.usage.input_tokens, c.usage.output_tokens) == (1, 12, 4)


async def test_stalled_read_times_out_then_retries(provider: str, server: FaultServer) -> None:
    server.script(stall(5.0), ok("second try", input_tokens=13, output_tokens=5))
    started = time.monotonic()
    c = await make(provider, server).complete(Q)
    assert c.text == "second try"
    assert server.count == 2
    assert time.monotonic() - started < 3.0  # the read timeout (0.4 s) cut the stall short
    assert (c.usage.input_tokens, c.usage.output_tokens) == (13, 5)


async def test_dropped_connection_then_success(provider: str, server: FaultServer) -> None:
    server.script(drop(), ok("reconnected", input_tokens=14, output_tokens=6))
    c = await make(provider, server).complete(Q)
    assert c.text == "reconnected"
    assert server.count == 2
    assert (c.usage.input_tokens, c.usage.output_tokens) == (14, 6)


async def test_malformed_json_then_success(provider: str, server: FaultServer) -> None:
    server.script(malformed(), ok("valid now", input_tokens=15, output_tokens=2))
    c = await make(provider, server).complete(Q)
    assert c.text == "valid now"
    assert server.count == 2


async def test_malformed_json_every_time(provider: str, server: FaultServer) -> None:
    server.script(*[malformed()] * 10)
    with pytest.raises(ModelError) as info:
        await make(provider, server).complete(Q)
    assert info.value.kind == "malformed"
    assert server.count == FAST.max_attempts
    assert "base_url" in str(info.value)


async def test_empty_then_success_counts_the_billed_empty_tokens(provider: str, server: FaultServer) -> None:
    server.script(empty(input_tokens=50, output_tokens=9), ok("text", input_tokens=21, output_tokens=8))
    c = await make(provider, server).complete(Q)
    assert c.text == "text"
    assert server.count == 2
    # One call, but the provider billed the empty attempt's tokens too: they are counted, not lost.
    assert (c.usage.calls, c.usage.input_tokens, c.usage.output_tokens) == (1, 71, 17)
    assert c.extra["billed_failed_attempts"]["input_tokens"] == 50


async def test_empty_twice_is_an_error(provider: str, server: FaultServer) -> None:
    server.script(empty(), empty(), ok("never reached"))
    with pytest.raises(ModelError) as info:
        await make(provider, server).complete(Q)
    assert info.value.kind == "empty"
    assert server.count == 2  # retried once, not up to max_attempts
    assert info.value.billed is not None and info.value.billed.calls == 0
    assert "max_tokens" in str(info.value)


@pytest.mark.parametrize(("status", "kind"), [(400, "bad_request"), (401, "auth"), (403, "auth"), (404, "not_found")])
async def test_no_retry_on_client_errors(provider: str, server: FaultServer, status: int, kind: str) -> None:
    server.script(error(status, "nope"), ok("never reached"))
    with pytest.raises(ModelError) as info:
        await make(provider, server).complete(Q)
    assert info.value.kind == kind
    assert info.value.retryable is False
    assert server.count == 1
    assert "nope" in str(info.value)


async def test_persistent_rate_limit_gives_up_after_max_attempts(provider: str, server: FaultServer) -> None:
    server.script(*[error(429, retry_after=0)] * 10)
    with pytest.raises(ModelError) as info:
        await make(provider, server).complete(Q)
    assert info.value.kind == "rate_limit"
    assert info.value.retryable is True
    assert server.count == FAST.max_attempts
    assert "max_concurrency" in str(info.value)


async def test_persistent_stall_is_a_timeout(provider: str, server: FaultServer) -> None:
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, read_timeout=0.3, connect_timeout=2.0)
    server.script(stall(5.0), stall(5.0), ok("never reached"))
    with pytest.raises(ModelError) as info:
        await make(provider, server, policy).complete(Q)
    assert info.value.kind == "timeout"
    assert server.count == 2
    assert "read_timeout" in str(info.value)


async def test_connection_refused_is_a_connection_error(provider: str) -> None:
    with FaultServer() as s:
        dead = s
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, read_timeout=1.0, connect_timeout=1.0)
    with pytest.raises(ModelError) as info:
        await make(provider, dead, policy).complete(Q)
    assert info.value.kind == "connection"


async def test_retry_after_larger_than_allowed_fails_fast(provider: str, server: FaultServer) -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=0.01, max_retry_after=1.0, read_timeout=2.0)
    server.script(error(429, retry_after=3600), ok("never reached"))
    started = time.monotonic()
    with pytest.raises(ModelError) as info:
        await make(provider, server, policy).complete(Q)
    assert time.monotonic() - started < 1.0
    assert info.value.kind == "rate_limit"
    assert server.count == 1
    assert "max_retry_after" in str(info.value)


async def test_max_concurrency_attribute(provider: str, server: FaultServer) -> None:
    assert make(provider, server).max_concurrency == 32
    factory = {
        "openai": lambda o: openai_backend.create_openai("gpt-4.1-mini", o),
        "anthropic": lambda o: anthropic_backend.create("claude-haiku-4-5", o),
        "gemini": lambda o: gemini_backend.create("gemini-2.5-flash", o),
    }[provider]
    lm = factory({"api_key": "k", "max_concurrency": 3})
    assert lm.max_concurrency == 3


def test_sync_calls_from_separate_event_loops(provider: str, server: FaultServer) -> None:
    """A sync facade runs each call in a fresh loop; the backend must not reuse a dead loop's client."""
    import asyncio

    server.script(ok("one"), ok("two"))
    lm = make(provider, server)
    assert asyncio.run(lm.complete(Q)).text == "one"
    assert asyncio.run(lm.complete(Q)).text == "two"
    assert server.count == 2
