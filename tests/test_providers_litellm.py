"""LiteLLM (optional extra): routed to a loopback OpenAI-style server; missing package error."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator

import pytest

from fault_server import FaultServer, error, ok
from unbounded.errors import ConfigError, MissingAPIKeyError, ModelError
from unbounded.models import Message, resolve_model
from unbounded.models.retry import RetryPolicy

pytestmark = [pytest.mark.network, pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")]
needs_litellm = pytest.mark.skipif(importlib.util.find_spec("litellm") is None, reason="litellm not installed")

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, read_timeout=2.0)


def test_missing_litellm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)
    with pytest.raises(ConfigError, match=r"pip install 'unbounded\[litellm\]'"):
        resolve_model("litellm/mistral/mistral-large-latest")


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


@needs_litellm
async def test_litellm_retries_once_counts_once(server: FaultServer) -> None:
    server.script(error(500), ok("via litellm", input_tokens=40, output_tokens=6, cached_tokens=10))
    lm = resolve_model("litellm/openai/gpt-4o-mini", api_key="sk-test", base_url=server.openai_url, retry_policy=FAST)
    c = await lm.complete([Message("user", "hi")], max_tokens=20)
    assert c.text == "via litellm"
    assert server.count == 2
    assert (c.usage.calls, c.usage.input_tokens, c.usage.output_tokens, c.usage.cached_input_tokens) == (1, 40, 6, 10)
    assert lm.price() == (0.15, 0.60, 0.075)  # from unbounded's table
    assert server.received[-1].body["max_tokens"] == 20


@needs_litellm
async def test_litellm_no_retry_on_401(server: FaultServer) -> None:
    server.script(error(401, "bad key"), ok("never"))
    lm = resolve_model("litellm/openai/gpt-4o-mini", api_key="sk-test", base_url=server.openai_url, retry_policy=FAST)
    with pytest.raises(ModelError) as info:
        await lm.complete([Message("user", "hi")])
    assert info.value.kind == "auth"
    assert server.count == 1


@needs_litellm
def test_litellm_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="MISTRAL_API_KEY"):
        resolve_model("litellm/mistral/mistral-large-latest")
