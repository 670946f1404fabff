"""The on-disk response cache: hits make no requests, keys include parameters, concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from fault_server import FaultServer, error, ok
from unbounded.errors import ModelError
from unbounded.models import Message, ScriptedLM
from unbounded.models.cache import CachedLM, cache_key, default_cache_path
from unbounded.models.openai_backend import create_openai
from unbounded.models.retry import RetryPolicy

FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, read_timeout=2.0)
Q = [Message("user", "What is the capital of France?")]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


@pytest.mark.network
async def test_second_identical_call_makes_no_request(server: FaultServer, tmp_path: Path) -> None:
    server.script(ok("Paris", input_tokens=20, output_tokens=2, cached_tokens=5))
    inner = create_openai("gpt-4o-mini", {"api_key": "k", "base_url": server.openai_url, "retry_policy": FAST})
    lm = CachedLM(inner, path=tmp_path / "c.sqlite")
    first = await lm.complete(Q, temperature=0, max_tokens=10)
    second = await lm.complete(Q, temperature=0, max_tokens=10)
    assert server.count == 1
    assert not first.cached and first.usage.cost_usd and first.usage.cost_usd > 0
    assert second.cached is True
    assert second.text == "Paris"
    u = second.usage
    assert (u.calls, u.input_tokens, u.output_tokens, u.cost_usd) == (1, 0, 0, 0.0)
    kept = second.extra["cached_usage"]
    assert (kept["input_tokens"], kept["output_tokens"], kept["cached_input_tokens"]) == (20, 2, 5)
    assert (lm.hits, lm.misses) == (1, 1)


@pytest.mark.network
async def test_cache_persists_across_instances(server: FaultServer, tmp_path: Path) -> None:
    server.script(ok("Paris"))
    path = tmp_path / "c.sqlite"
    inner = create_openai("gpt-4o-mini", {"api_key": "k", "base_url": server.openai_url})
    await CachedLM(inner, path=path).complete(Q)
    again = await CachedLM(inner, path=path).complete(Q)
    assert again.cached and server.count == 1


@pytest.mark.network
async def test_errors_are_not_cached(server: FaultServer, tmp_path: Path) -> None:
    server.script(error(400, "bad"), ok("good"))
    inner = create_openai("gpt-4o-mini", {"api_key": "k", "base_url": server.openai_url, "retry_policy": FAST})
    lm = CachedLM(inner, path=tmp_path / "c.sqlite")
    with pytest.raises(ModelError):
        await lm.complete(Q)
    c = await lm.complete(Q)
    assert c.text == "good" and not c.cached
    assert server.count == 2


async def test_parameters_are_part_of_the_key(tmp_path: Path) -> None:
    inner = ScriptedLM(lambda msgs: f"reply {len(inner.calls)}")
    lm = CachedLM(inner, path=tmp_path / "c.sqlite")
    await lm.complete(Q, temperature=0)
    await lm.complete(Q, temperature=0.7)
    await lm.complete(Q, temperature=0, max_tokens=5)
    await lm.complete(Q, temperature=0, stop=["\n"])
    await lm.complete(Q, temperature=0, seed=1)
    await lm.complete([Message("system", "x"), *Q], temperature=0)
    assert len(inner.calls) == 6
    hit = await lm.complete(Q, temperature=0)
    assert hit.cached and hit.text == "reply 1"
    assert len(inner.calls) == 6


def test_key_depends_on_model_messages_and_params() -> None:
    base = cache_key("a/m", Q, {"temperature": 0})
    assert base == cache_key("a/m", Q, {"temperature": 0, "unrelated": 1})
    assert base != cache_key("b/m", Q, {"temperature": 0})
    assert base != cache_key("a/m", [Message("user", "other")], {"temperature": 0})
    assert cache_key("a/m", Q, {"stop": "x"}) == cache_key("a/m", Q, {"stop": ["x"]})
    assert len(base) == 64


async def test_empty_completions_are_not_cached(tmp_path: Path) -> None:
    inner = ScriptedLM(["", "now text"])
    lm = CachedLM(inner, path=tmp_path / "c.sqlite")
    assert (await lm.complete(Q)).text == ""
    second = await lm.complete(Q)
    assert second.text == "now text" and not second.cached
    assert (await lm.complete(Q)).cached


async def test_concurrent_identical_calls_share_one_request(tmp_path: Path) -> None:
    inner = ScriptedLM(["shared"], latency=0.1)
    lm = CachedLM(inner, path=tmp_path / "c.sqlite")
    results = await asyncio.gather(*(lm.complete(Q) for _ in range(8)))
    assert len(inner.calls) == 1
    assert {r.text for r in results} == {"shared"}
    assert sum(not r.cached for r in results) == 1


async def test_concurrent_distinct_calls(tmp_path: Path) -> None:
    inner = ScriptedLM(lambda msgs: msgs[-1].content.upper(), latency=0.01)
    lm = CachedLM(inner, path=tmp_path / "c.sqlite")
    prompts = [[Message("user", f"q{i}")] for i in range(50)]
    first = await asyncio.gather(*(lm.complete(p) for p in prompts))
    second = await asyncio.gather(*(lm.complete(p) for p in prompts))
    assert [c.text for c in first] == [c.text for c in second] == [f"Q{i}" for i in range(50)]
    assert len(inner.calls) == 50
    assert all(c.cached for c in second)
    assert lm.store.count() == 50


def test_delegates_the_protocol(tmp_path: Path) -> None:
    inner = ScriptedLM(["x"], name="scripted/a", max_concurrency=7, price=(1.0, 2.0, 0.5), context_window=4096)
    lm = CachedLM(inner, path=tmp_path / "c.sqlite")
    assert lm.name == "scripted/a"
    assert lm.max_concurrency == 7
    assert lm.context_window == 4096
    assert lm.price() == (1.0, 2.0, 0.5)
    assert lm.count_tokens(Q) is None


def test_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UNBOUNDED_CACHE_DIR", str(tmp_path / "cachedir"))
    assert default_cache_path() == tmp_path / "cachedir" / "responses.sqlite"
    lm = CachedLM(ScriptedLM(["x"]))
    assert lm.store.path == tmp_path / "cachedir" / "responses.sqlite"
    assert lm.store.path.exists()
    monkeypatch.delenv("UNBOUNDED_CACHE_DIR")
    assert default_cache_path().name == "responses.sqlite"
    assert "unbounded" in str(default_cache_path())


def test_factory_cache_option(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("UNBOUNDED_CACHE_DIR", str(tmp_path))
    lm = create_openai("gpt-4o-mini", {"api_key": "k", "cache": True, "max_concurrency": 4})
    assert isinstance(lm, CachedLM)
    assert lm.name == "openai/gpt-4o-mini" and lm.max_concurrency == 4
    explicit = create_openai("gpt-4o-mini", {"api_key": "k", "cache": str(tmp_path / "x.sqlite")})
    assert isinstance(explicit, CachedLM) and explicit.store.path == tmp_path / "x.sqlite"
