"""Anthropic Messages specifics: system prompt, prompt-cache breakpoints, cache usage and cost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fault_server import FaultServer, error, ok
from unbounded.errors import MissingAPIKeyError
from unbounded.models import Message, resolve_model
from unbounded.models.anthropic_backend import AnthropicLM, create
from unbounded.models.retry import RetryPolicy

pytestmark = pytest.mark.network

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, read_timeout=2.0)
SYSTEM = Message("system", "You write Python to explore a context variable.")
META = Message("user", "context: str of 10,000,000 chars. Question: what is the magic number?")


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "UNBOUNDED_PRICES"):
        monkeypatch.delenv(var, raising=False)


def make(server: FaultServer, **opts: object) -> AnthropicLM:
    options = {"api_key": "sk-ant-test", "base_url": server.anthropic_url, "retry_policy": FAST, **opts}
    lm = create("claude-sonnet-4-6", options)
    assert isinstance(lm, AnthropicLM)
    return lm


async def test_system_prompt_and_max_tokens(server: FaultServer) -> None:
    server.script(ok("print(context[:100])"))
    lm = make(server)
    c = await lm.complete([SYSTEM, META], temperature=0.3, stop=["```\n"], seed=3)
    req = server.received[0]
    assert req.path == "/v1/messages"
    body = req.body
    assert body["model"] == "claude-sonnet-4-6"
    assert body["max_tokens"] == 8192  # required by the API; the default fills in
    assert body["system"] == [{"type": "text", "text": SYSTEM.content, "cache_control": {"type": "ephemeral"}}]
    assert body["stop_sequences"] == ["```\n"]
    assert "temperature" not in body  # API 2026-10-21 rejects sampling parameters
    assert "seed" not in body
    # a one-shot call gets no message breakpoint (a cache write would never be read)
    assert body["messages"] == [{"role": "user", "content": META.content}]
    assert req.headers.get("x-api-key") == "sk-ant-test" or req.headers.get("authorization") == "Bearer sk-ant-test"
    assert c.text == "print(context[:100])"
    assert c.extra["request_id"].startswith("req_")


async def test_breakpoints_on_early_turn_and_newest_message(server: FaultServer) -> None:
    server.script(ok("FINAL(4817)"))
    lm = make(server)
    history = [
        SYSTEM,
        META,
        Message("assistant", "```python\nprint(grep('magic'))\n```"),
        Message("user", "[(13337, 'The magic number is 4817.')]"),
    ]
    await lm.complete(history, max_tokens=100)
    msgs = server.received[0].body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[0]["content"] == [{"type": "text", "text": META.content, "cache_control": {"type": "ephemeral"}}]
    assert msgs[1]["content"] == history[2].content
    assert msgs[2]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert server.received[0].body["max_tokens"] == 100


async def test_prompt_cache_can_be_turned_off(server: FaultServer) -> None:
    server.script(ok("x"))
    lm = make(server, prompt_cache=False)
    await lm.complete([SYSTEM, META, Message("assistant", "a"), Message("user", "b")])
    body = server.received[0].body
    assert "cache_control" not in str(body)


async def test_one_hour_ttl(server: FaultServer) -> None:
    server.script(ok("x"))
    lm = make(server, cache_ttl="1h")
    await lm.complete([SYSTEM, META])
    assert server.received[0].body["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


async def test_consecutive_roles_are_merged(server: FaultServer) -> None:
    server.script(ok("x"))
    lm = make(server, prompt_cache=False)
    await lm.complete([Message("user", "a"), Message("user", "b"), Message("assistant", "c")])
    assert server.received[0].body["messages"] == [
        {"role": "user", "content": "a\n\nb"},
        {"role": "assistant", "content": "c"},
    ]


async def test_cache_usage_and_cost_with_write_premium(server: FaultServer) -> None:
    # fresh 1_000 + read 9_000 + written 2_000 = 12_000 prompt tokens
    server.script(ok("x", input_tokens=1_000, output_tokens=500, cached_tokens=9_000, cache_creation_tokens=2_000))
    lm = make(server)
    c = await lm.complete([SYSTEM, META])
    u = c.usage
    assert (u.calls, u.input_tokens, u.cached_input_tokens, u.output_tokens) == (1, 12_000, 9_000, 500)
    assert c.extra["cache_read_input_tokens"] == 9_000
    assert c.extra["cache_creation_input_tokens"] == 2_000
    # sonnet 4.6: $3 in, $15 out, $0.30 cache read; writes at 1.25 x $3
    expected = (1_000 * 3 + 2_000 * 3 * 1.25 + 9_000 * 0.30 + 500 * 15) / 1e6
    assert u.cost_usd == pytest.approx(expected)


async def test_overloaded_529_is_retried(server: FaultServer) -> None:
    server.script(error(529), ok("after overload", input_tokens=5, output_tokens=2))
    c = await make(server).complete([META])
    assert c.text == "after overload"
    assert server.count == 2
    assert (c.usage.input_tokens, c.usage.output_tokens) == (5, 2)


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        resolve_model("anthropic/claude-sonnet-4-6")


def test_price_and_window_from_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    lm = resolve_model("anthropic/claude-haiku-4-5-20251001")
    assert lm.price() == (1.0, 5.0, 0.10)
    assert lm.context_window == 200_000
    assert resolve_model("anthropic/claude-opus-4-6").price() == (5.0, 25.0, 0.5)
    assert resolve_model("anthropic/claude-opus-4-1-20250805").price() == (15.0, 75.0, 1.5)
    assert resolve_model("anthropic/claude-3-5-haiku-latest").price() == (0.8, 4.0, 0.08)
