"""Gemini specifics (google-genai SDK): request shape, thinking tokens, RetryInfo back-off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fault_server import FaultServer, error, ok
from unbounded.errors import MissingAPIKeyError
from unbounded.models import Message, resolve_model
from unbounded.models.gemini_backend import GeminiLM, _retry_info_delay, create
from unbounded.models.retry import RetryPolicy

pytestmark = pytest.mark.network

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, read_timeout=2.0)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL", "UNBOUNDED_PRICES"):
        monkeypatch.delenv(var, raising=False)


def make(server: FaultServer, **opts: object) -> GeminiLM:
    lm = create("gemini-2.5-pro", {"api_key": "g-key", "base_url": server.gemini_url, "retry_policy": FAST, **opts})
    assert isinstance(lm, GeminiLM)
    return lm


async def test_request_shape(server: FaultServer) -> None:
    server.script(ok("answer"))
    lm = make(server)
    msgs = [
        Message("system", "sys"),
        Message("user", "u1"),
        Message("assistant", "a1"),
        Message("user", "u2"),
    ]
    c = await lm.complete(msgs, max_tokens=77, temperature=0.1, stop=["END"], seed=5)
    req = server.received[0]
    assert req.path.endswith("/models/gemini-2.5-pro:generateContent")
    assert req.headers["x-goog-api-key"] == "g-key"
    body = req.body
    assert body["systemInstruction"]["parts"] == [{"text": "sys"}]
    assert [(c["role"], c["parts"][0]["text"]) for c in body["contents"]] == [
        ("user", "u1"),
        ("model", "a1"),
        ("user", "u2"),
    ]
    assert body["generationConfig"] == {"maxOutputTokens": 77, "temperature": 0.1, "stopSequences": ["END"], "seed": 5}
    assert c.text == "answer"
    assert c.finish_reason == "STOP"


async def test_thinking_tokens_are_billed_as_output(server: FaultServer) -> None:
    server.script(ok("x", input_tokens=10_000, output_tokens=200, cached_tokens=8_000, thoughts_tokens=800))
    c = await make(server).complete([Message("user", "q")])
    u = c.usage
    assert (u.calls, u.input_tokens, u.cached_input_tokens, u.output_tokens) == (1, 10_000, 8_000, 1_000)
    assert c.extra["reasoning_tokens"] == 800
    # gemini-2.5-pro: $1.25 in, $10 out, $0.125 cached
    assert u.cost_usd == pytest.approx((2_000 * 1.25 + 8_000 * 0.125 + 1_000 * 10) / 1e6)


async def test_retry_info_in_body_is_honoured(server: FaultServer) -> None:
    server.script(error(429, "quota per minute", retry_info=0.3), ok("later"))
    c = await make(server).complete([Message("user", "q")])
    assert c.text == "later"
    first, second = server.received
    assert second.at - first.at >= 0.3


def test_retry_info_parsing() -> None:
    body = {
        "error": {
            "code": 429,
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
            ],
        }
    }
    assert _retry_info_delay(body) == 37.0
    assert _retry_info_delay({"error": {"details": []}}) is None
    assert _retry_info_delay(None) is None


def test_missing_key_names_both_variables() -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        resolve_model("gemini/gemini-2.5-flash")
    assert "GEMINI_API_KEY" in str(info.value) and "GOOGLE_API_KEY" in str(info.value)


def test_google_api_key_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "gk")
    lm = resolve_model("gemini/gemini-2.5-flash-lite")
    assert lm.price() == (0.10, 0.40, 0.01)
    assert lm.context_window == 1_048_576


async def test_aclose_closes_both_clients(server: FaultServer) -> None:
    server.script(ok("x"))
    lm = make(server)
    await lm.complete([Message("user", "q")])
    _, http = lm._clients.get()
    await lm.aclose()
    assert http.is_closed
