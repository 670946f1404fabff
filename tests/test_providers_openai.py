"""OpenAI Chat Completions specifics: parameter quirks, keys, aliases and base URLs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fault_server import FaultServer, error, ok
from unbounded.errors import ConfigError, ModelError
from unbounded.models import Message, resolve_model
from unbounded.models.openai_backend import (
    OpenAIChatLM,
    create_compatible,
    create_llamacpp,
    create_lmstudio,
    create_ollama,
    create_openai,
    create_openrouter,
    create_together,
    create_vllm,
    is_reasoning_model,
)
from unbounded.models.retry import RetryPolicy

pytestmark = pytest.mark.network

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, read_timeout=2.0)
Q = [Message("system", "Be brief."), Message("user", "Say hi.")]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_COMPATIBLE_API_KEY",
        "OPENAI_COMPATIBLE_BASE_URL",
        "OLLAMA_BASE_URL",
        "OLLAMA_HOST",
        "VLLM_BASE_URL",
        "LLAMACPP_BASE_URL",
        "LMSTUDIO_BASE_URL",
        "OPENROUTER_API_KEY",
        "OPENROUTER_BASE_URL",
        "TOGETHER_API_KEY",
        "TOGETHER_BASE_URL",
        "UNBOUNDED_PRICES",
    ):
        monkeypatch.delenv(var, raising=False)


def test_reasoning_model_detection() -> None:
    for m in ("o1", "o3", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano-2025-08-07", "openai/o3"):
        assert is_reasoning_model(m), m
    for m in ("gpt-4o", "gpt-4.1-mini", "gpt-5-chat-latest", "llama3"):
        assert not is_reasoning_model(m), m


async def test_reasoning_model_parameters(server: FaultServer) -> None:
    server.script(ok("hi there STOP and more"))
    lm = create_openai("gpt-5-mini", {"api_key": "sk-test", "base_url": server.openai_url, "retry_policy": FAST})
    c = await lm.complete(Q, max_tokens=321, temperature=0.2, stop=["STOP"], seed=7)
    body = server.received[0].body
    assert body["max_completion_tokens"] == 321
    assert "max_tokens" not in body
    assert "temperature" not in body
    assert "stop" not in body
    assert body["seed"] == 7
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hi."},
    ]
    assert c.text == "hi there "  # the stop sequence applied to the text instead
    assert server.received[0].headers["authorization"] == "Bearer sk-test"


async def test_chat_model_on_openai_uses_max_completion_tokens(server: FaultServer) -> None:
    server.script(ok("hello"))
    lm = create_openai("gpt-4.1-mini", {"api_key": "sk-test", "base_url": server.openai_url})
    await lm.complete(Q, max_tokens=50, temperature=0.0, stop="END")
    body = server.received[0].body
    assert body["max_completion_tokens"] == 50
    assert body["temperature"] == 0.0
    assert body["stop"] == ["END"]


async def test_default_max_tokens_sent_when_caller_gives_none(server: FaultServer) -> None:
    server.script(ok("a"), ok("b"))
    reasoning = create_openai("o4-mini", {"api_key": "k", "base_url": server.openai_url})
    chat = create_openai("gpt-4o", {"api_key": "k", "base_url": server.openai_url, "default_max_tokens": 99})
    await reasoning.complete(Q)
    await chat.complete(Q)
    assert server.received[0].body["max_completion_tokens"] == reasoning.default_max_tokens == 16_384
    assert server.received[1].body["max_completion_tokens"] == 99


async def test_compatible_server_gets_plain_parameters_and_no_openai_key(
    server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-openai")
    server.script(ok("from vllm", input_tokens=30, output_tokens=4))
    lm = resolve_model(f"openai-compatible/qwen2.5-coder@{server.openai_url}", retry_policy=FAST)
    c = await lm.complete(Q, max_tokens=64, temperature=0.5, stop=["\n\n"], seed=1)
    req = server.received[0]
    assert req.path == "/v1/chat/completions"
    assert req.body["model"] == "qwen2.5-coder"
    assert req.body["max_tokens"] == 64
    assert "max_completion_tokens" not in req.body
    assert req.body["temperature"] == 0.5
    assert req.body["stop"] == ["\n\n"]
    assert "sk-secret-openai" not in req.headers["authorization"]
    assert c.text == "from vllm"
    assert c.usage.cost_usd == 0.0  # loopback server: free
    assert lm.name == f"openai-compatible/qwen2.5-coder@{server.openai_url}"


async def test_compatible_with_base_url_option(server: FaultServer) -> None:
    server.script(ok("x"))
    lm = create_compatible("my-model", {"base_url": server.openai_url, "api_key": "local-key"})
    await lm.complete(Q)
    assert server.received[0].headers["authorization"] == "Bearer local-key"


def test_compatible_without_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        create_compatible("my-model", {})


def test_local_aliases_default_urls_and_zero_price() -> None:
    cases = [
        (create_ollama, "http://localhost:11434/v1"),
        (create_vllm, "http://localhost:8000/v1"),
        (create_llamacpp, "http://localhost:8080/v1"),
        (create_lmstudio, "http://localhost:1234/v1"),
    ]
    for factory, url in cases:
        lm = factory("some-model", {})
        assert lm.base_url == url
        assert lm.price() == (0.0, 0.0, 0.0)
        assert lm.max_concurrency == 32


def test_local_alias_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://gpu-box:11434/v1")
    assert create_ollama("llama3.2", {}).base_url == "http://gpu-box:11434/v1"
    monkeypatch.delenv("OLLAMA_BASE_URL")
    monkeypatch.setenv("OLLAMA_HOST", "10.0.0.5:11434")
    assert create_ollama("llama3.2", {}).base_url == "http://10.0.0.5:11434/v1"
    monkeypatch.setenv("VLLM_BASE_URL", "http://vllm:9000/v1")
    assert create_vllm("m", {}).base_url == "http://vllm:9000/v1"
    assert create_vllm("m", {"base_url": "http://other:1/v1"}).base_url == "http://other:1/v1"


async def test_ollama_alias_talks_to_the_server(server: FaultServer) -> None:
    server.script(ok("llama says hi", input_tokens=8, output_tokens=3))
    lm = resolve_model("ollama/llama3.2", base_url=server.openai_url)
    c = await lm.complete(Q, temperature=0)
    assert c.text == "llama says hi"
    assert server.received[0].body["max_tokens"] == lm.default_max_tokens
    assert c.usage.cost_usd == 0.0
    assert lm.name == "ollama/llama3.2"


def test_hosted_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "or-key")
    monkeypatch.setenv("TOGETHER_API_KEY", "tg-key")
    router = create_openrouter("anthropic/claude-sonnet-4.5", {})
    assert router.base_url == "https://openrouter.ai/api/v1"
    assert router.price() == (3.0, 15.0, 0.3)  # list prices pass through OpenRouter
    together = create_together("meta-llama/Llama-3.3-70B-Instruct-Turbo", {})
    assert together.base_url == "https://api.together.xyz/v1"
    assert together.price() is None  # not in the table: unknown, not free


@pytest.mark.parametrize(
    ("factory", "var"),
    [
        (create_openai, "OPENAI_API_KEY"),
        (create_openrouter, "OPENROUTER_API_KEY"),
        (create_together, "TOGETHER_API_KEY"),
    ],
)
def test_missing_key_names_the_variable(factory, var: str) -> None:  # type: ignore[no-untyped-def]
    from unbounded.errors import MissingAPIKeyError

    with pytest.raises(MissingAPIKeyError, match=var):
        factory("some-model", {})


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    lm = create_openai("gpt-5-nano", {})
    assert lm._api_key == "sk-env"
    assert lm.base_url == "https://api.openai.com/v1"
    assert lm.context_window == 400_000


async def test_insufficient_quota_is_not_retried(server: FaultServer) -> None:
    server.script(error(429, "You exceeded your current quota", code="insufficient_quota"), ok("never"))
    lm = create_openai("gpt-4o-mini", {"api_key": "k", "base_url": server.openai_url, "retry_policy": FAST})
    with pytest.raises(ModelError) as info:
        await lm.complete(Q)
    assert info.value.kind == "quota"
    assert server.count == 1


async def test_x_should_retry_false_is_respected(server: FaultServer) -> None:
    server.script(error(500, headers={"x-should-retry": "false"}), ok("never"))
    lm = create_openai("gpt-4o-mini", {"api_key": "k", "base_url": server.openai_url, "retry_policy": FAST})
    with pytest.raises(ModelError) as info:
        await lm.complete(Q)
    assert info.value.kind == "server"
    assert server.count == 1


async def test_retry_after_ms_header(server: FaultServer) -> None:
    server.script(error(429, retry_after_ms=300), ok("ok"))
    lm = create_openai("gpt-4o-mini", {"api_key": "k", "base_url": server.openai_url, "retry_policy": FAST})
    await lm.complete(Q)
    first, second = server.received
    assert second.at - first.at >= 0.3


async def test_context_length_error_kind(server: FaultServer) -> None:
    server.script(error(400, "This model's maximum context length is 128000 tokens", code="context_length_exceeded"))
    lm = create_openai("gpt-4o-mini", {"api_key": "k", "base_url": server.openai_url, "retry_policy": FAST})
    with pytest.raises(ModelError) as info:
        await lm.complete(Q)
    assert info.value.kind == "context_length"
    assert server.count == 1


async def test_unknown_price_gives_unknown_cost(server: FaultServer) -> None:
    server.script(ok("x", input_tokens=100, output_tokens=10))
    lm = OpenAIChatLM("mystery-model", base_url=server.openai_url, price=None, policy=FAST)
    c = await lm.complete(Q)
    assert lm.price() is None
    assert c.usage.cost_usd is None
    assert c.usage.input_tokens == 100


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(ConfigError, match="temprature"):
        create_ollama("m", {"temprature": 0.1})


def test_invalid_max_concurrency() -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        create_ollama("m", {"max_concurrency": 0})


def test_policy_options_are_parsed() -> None:
    lm = create_ollama("m", {"max_retries": 2, "read_timeout": 30, "connect_timeout": 2, "retry_base_delay": 0.1})
    assert lm.policy.max_attempts == 3
    assert lm.policy.read_timeout == 30.0
    assert lm.policy.connect_timeout == 2.0
    assert lm.policy.base_delay == 0.1
    default = create_ollama("m", {})
    assert (default.policy.max_attempts, default.policy.read_timeout, default.policy.connect_timeout) == (
        5,
        600.0,
        10.0,
    )


def test_compatible_spec_splits_at_the_url() -> None:
    lm = create_compatible("claude-sonnet-4-5@20250929@https://user:pw@gateway.example/v1", {})
    assert lm.model == "claude-sonnet-4-5@20250929"
    assert lm.base_url == "https://user:pw@gateway.example/v1"
    assert lm.price() is None  # an unknown remote server: cost unknown, not zero
