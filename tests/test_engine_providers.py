"""Whole RLM runs on real provider backends (OpenAI and Anthropic wire formats) against the loopback
fault server: retries, clear error statuses, exact books, the response cache, mixed backends, cost limits.

No scripted model here: the root and sub-models are the real ``openai`` / ``anthropic`` backends, their
SDKs talk HTTP to ``tests/fault_server.py``, and the server's scripted replies hold the root's code.
Every test checks the books three ways and demands that they agree exactly:

* the server: how many requests arrived, and the usage it returned on the replies that reached the client;
* the result: ``result.usage`` per model name (successful calls only, tokens and cost);
* the trace: one ``lm_response`` per ``lm_request``, their usage sums, and the ledger in ``run_end``
  (which also counts failed calls, since an attempt counts against ``max_llm_calls``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import code
from fault_server import Behaviour, FaultServer, Received, drop, empty, error, malformed, ok, stall
from unbounded import RLM, Budget
from unbounded.errors import UnknownModelError
from unbounded.models import Message, Usage
from unbounded.models.base import upper_bound_input_tokens
from unbounded.models.pricing import lookup_price
from unbounded.models.registry import resolve_model
from unbounded.models.retry import RetryPolicy
from unbounded.result import RLMResult
from unbounded.trace import Event, read_trace

pytestmark = pytest.mark.network

#: Short timeouts and backoff so every fault costs well under a second.
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, read_timeout=0.5, connect_timeout=2.0)

ROOT = {"openai": "gpt-4.1-mini", "anthropic": "claude-haiku-4-5"}
SUB = {"openai": "gpt-4.1-nano", "anthropic": "claude-3-5-haiku"}
PROVIDERS = sorted(ROOT)


def backend(provider: str, server: FaultServer, model: str, policy: RetryPolicy = FAST, **options: Any) -> Any:
    """A real backend, resolved from its spec string, pointed at the fault server."""
    if provider == "openai":
        return resolve_model(
            f"openai/{model}", api_key="sk-test", base_url=server.openai_url, retry_policy=policy, **options
        )
    return resolve_model(
        f"anthropic/{model}", api_key="sk-ant-test", base_url=server.anthropic_url, retry_policy=policy, **options
    )


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(default=error(418, "unscripted request")) as s:
        yield s


@pytest.fixture
def sub_server() -> Iterator[FaultServer]:
    with FaultServer(default=error(418, "unscripted request")) as s:
        yield s


# -- the three sets of books ------------------------------------------------------------------------


def _name(rec: Received) -> str:
    return f"{rec.protocol}/{rec.body['model']}"


def served(*servers: FaultServer, rename: dict[str, str] | None = None) -> dict[str, Usage]:
    """Usage per model as the servers returned it, on the replies that reached the client.

    A stall's late reply does not count (the client gave up on it). An empty completion is retried,
    but the provider billed it: its tokens count, as no call. Anthropic's ``input_tokens`` excludes cache reads and writes on the wire;
    the backends report the total prompt, so they are added back here.
    """
    out: dict[str, Usage] = {}
    for s in servers:
        for rec in s.received:
            b = rec.behaviour
            if b is None or b.action != "ok":
                continue
            total_in = b.input_tokens
            if rec.protocol == "anthropic":
                total_in += b.cached_tokens + b.cache_creation_tokens
            name = _name(rec)
            u = out.setdefault((rename or {}).get(name, name), Usage(cost_usd=None))
            u.add(Usage(1 if b.text.strip() else 0, total_in, b.output_tokens, b.cached_tokens, None))
    return out


@dataclass
class Books:
    requests: list[Event]
    responses: list[Event]
    ledger: dict[str, Any]
    by_model: dict[str, Usage] = field(default_factory=dict)

    @property
    def failed(self) -> list[Event]:
        return [r for r in self.responses if "error" in r.data]

    @property
    def hits(self) -> list[Event]:
        return [r for r in self.responses if r.data.get("cached")]


def books(result: RLMResult, trace: Path) -> Books:
    """Check that the trace and the result agree, and return the trace's books."""
    events = read_trace(trace)
    reqs = [e for e in events if e.type == "lm_request"]
    resps = [e for e in events if e.type == "lm_response"]
    # Every request has exactly one response, under the same id: no lost and no doubled calls.
    assert sorted(e.id for e in reqs) == sorted(e.id for e in resps)
    assert len({e.id for e in reqs}) == len(reqs)
    by_model: dict[str, Usage] = {}
    for r in resps:
        if "error" in r.data:
            if "usage" in r.data:  # a failed call the provider still billed (empty completions)
                billed = Usage.from_dict(r.data["usage"])
                assert billed.calls == 0
                by_model.setdefault(r.data["model"], Usage(cost_usd=0.0)).add(billed)
            continue
        u = Usage.from_dict(r.data["usage"])
        assert u.calls == 1
        by_model.setdefault(r.data["model"], Usage(cost_usd=0.0)).add(u)
    assert set(by_model) == set(result.usage)
    for model, u in by_model.items():
        got = result.usage[model]
        assert (got.calls, got.input_tokens, got.output_tokens, got.cached_input_tokens) == (
            u.calls,
            u.input_tokens,
            u.output_tokens,
            u.cached_input_tokens,
        ), model
        assert got.cost_usd == pytest.approx(u.cost_usd, abs=1e-12)
    (end,) = [e for e in events if e.type == "run_end"]
    ledger = end.data["ledger"]
    total = result.total_usage
    assert ledger["calls"] == len(reqs)  # failed attempts count against max_llm_calls too
    assert ledger["in_flight"] == 0
    assert ledger["tokens"] == total.input_tokens + total.output_tokens
    assert ledger["cost_usd"] == pytest.approx(total.cost_usd, abs=1e-12)
    assert end.data["usage"] == {k: v.to_dict() for k, v in result.usage.items()}
    return Books(reqs, resps, ledger, by_model)


def assert_usage_is_what_was_served(
    result: RLMResult, lms: dict[str, Any], *servers: FaultServer, rename: dict[str, str] | None = None
) -> None:
    """result.usage equals, per model, exactly what the servers returned; cost is the model's price of it.

    Models are named ``<protocol>/<model in the request>``; ``rename`` maps that to the backend's name where
    they differ (``openai-compatible/...@url``).
    """
    expected = served(*servers, rename=rename)
    assert set(result.usage) == set(expected)
    for model, want in expected.items():
        got = result.usage[model]
        assert (got.calls, got.input_tokens, got.output_tokens, got.cached_input_tokens) == (
            want.calls,
            want.input_tokens,
            want.output_tokens,
            want.cached_input_tokens,
        ), model
        assert got.cost_usd is not None
        assert got.cost_usd == pytest.approx(lms[model].cost(want), abs=1e-12)


# -- 1. one fault on every root turn, then success -----------------------------------------------

TURN_1 = code("x = 6 * 7\nprint('x is', x)")
TURN_2 = code("FINAL(str(x))")

FAULTS: dict[str, Callable[[], Behaviour]] = {
    "429_retry_after": lambda: error(429, "slow down", retry_after=0.3),
    "500": lambda: error(500, "boom"),
    "stalled_read": lambda: stall(10.0),
    "dropped_connection": drop,
    "malformed_json": malformed,
    "empty_completion": lambda: empty(input_tokens=777, output_tokens=77),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_fault_on_each_root_turn_is_retried(
    provider: str, server: FaultServer, tmp_path: Path, fault: str
) -> None:
    server.script(
        FAULTS[fault](),
        ok(TURN_1, input_tokens=1200, output_tokens=30),
        FAULTS[fault](),
        ok(TURN_2, input_tokens=1400, output_tokens=12),
    )
    lm = backend(provider, server, ROOT[provider])
    trace = tmp_path / "t.jsonl"
    result = RLM(model=lm, repl="inprocess", trace=trace).run("What is six times seven?", "some context")

    assert (result.status, result.answer, result.iterations) == ("final", "42", 2)
    assert server.count == 4  # one retry per turn, nothing more
    assert server.remaining == 0
    if fault == "429_retry_after":  # the server's Retry-After was honoured
        r = server.received
        assert r[1].at - r[0].at >= 0.3
        assert r[3].at - r[2].at >= 0.3
    u = result.usage[lm.name]
    # Two calls; a retried empty completion was still billed, so its tokens count too.
    billed_in, billed_out = (2 * 777, 2 * 77) if fault == "empty_completion" else (0, 0)
    assert (u.calls, u.input_tokens, u.output_tokens) == (2, 2600 + billed_in, 42 + billed_out)
    assert_usage_is_what_was_served(result, {lm.name: lm}, server)
    b = books(result, trace)
    assert len(b.requests) == 2 and not b.failed  # retries live inside one call: the ledger sees 2 calls


# -- 2. a fault that does not go away ends the run with a clear status ---------------------------

PERSISTENT: dict[str, tuple[list[Behaviour], int, str]] = {
    # name: (behaviours for the second turn, requests the server must see for it, status)
    "timeout": ([stall(10.0)] * 2, 2, "error:timeout"),  # with max_attempts=2, to keep it short
    "server_error": ([error(500)] * 3, 3, "error:server"),
    "rate_limit": ([error(429, retry_after=0)] * 3, 3, "error:rate_limit"),
    "dropped_connection": ([drop()] * 3, 3, "error:connection"),
    "malformed_json": ([malformed()] * 3, 3, "error:malformed"),
    "empty_completion": ([empty(), empty()], 2, "error:empty"),  # one retry for an empty reply, not three
    "auth": ([error(401, "bad key")], 1, "error:auth"),  # never retried
}


@pytest.mark.parametrize("case", sorted(PERSISTENT))
def test_persistent_fault_ends_with_a_clear_status(
    provider: str, server: FaultServer, tmp_path: Path, case: str
) -> None:
    behaviours, requests, status = PERSISTENT[case]
    policy = FAST if case != "timeout" else RetryPolicy(max_attempts=2, base_delay=0.01, read_timeout=0.5)
    server.script(ok(TURN_1, input_tokens=900, output_tokens=25), *behaviours)
    lm = backend(provider, server, ROOT[provider], policy)
    trace = tmp_path / "t.jsonl"
    result = RLM(model=lm, repl="inprocess", trace=trace).run("What is six times seven?", "some context")

    assert result.status == status
    assert result.answer is None
    assert result.iterations == 2
    assert result.error and lm.name in result.error and status.split(":")[1] in result.error
    assert server.count == 1 + requests
    u = result.usage[lm.name]
    assert u.calls == 1  # the failed turn is not a call ...
    if status == "error:empty":  # ... but empty completions were billed by the provider
        assert (u.input_tokens, u.output_tokens) > (900, 25)
    else:
        assert (u.input_tokens, u.output_tokens) == (900, 25)
    assert_usage_is_what_was_served(result, {lm.name: lm}, server)
    b = books(result, trace)
    assert len(b.requests) == 2  # the failed call is in the ledger as an attempt ...
    assert len(b.failed) == 1  # ... and in the trace as a response with an error
    assert status.split(":")[1] in b.failed[0].data["error"]


# -- 3. sub-calls: llm_batch items meet faults concurrently; failed items become error strings --------

SUB_ITEMS: dict[str, tuple[list[Behaviour], str]] = {
    # prompt: (what the sub-model's server does, answer the item must get)
    "item-ok": ([ok("A", input_tokens=11, output_tokens=2)], "A"),
    "item-429": ([error(429, retry_after=0.2), ok("B", input_tokens=12, output_tokens=3)], "B"),
    "item-500": ([error(503), ok("C", input_tokens=13, output_tokens=4)], "C"),
    "item-stall": ([stall(10.0), ok("D", input_tokens=14, output_tokens=5)], "D"),
    "item-drop": ([drop(), ok("E", input_tokens=15, output_tokens=6)], "E"),
    "item-malformed": ([malformed(), ok("F", input_tokens=16, output_tokens=7)], "F"),
    "item-empty": ([empty(input_tokens=50, output_tokens=9), ok("G", input_tokens=17, output_tokens=8)], "G"),
    "item-rejected": ([error(400, "this item is invalid")], "[error"),
    "item-timeout": ([stall(10.0)] * 2, "[error"),  # the sub-model has max_attempts=2
}


def test_llm_batch_items_with_faults(
    provider: str, server: FaultServer, sub_server: FaultServer, tmp_path: Path
) -> None:
    prompts = list(SUB_ITEMS)
    for prompt, (behaviours, _) in SUB_ITEMS.items():
        sub_server.route(prompt, *behaviours)
    server.script(
        ok(code(f"r = llm_batch({prompts!r})\nprint(r)"), input_tokens=1000, output_tokens=40),
        ok(code("import json\nFINAL(json.dumps(r))"), input_tokens=1500, output_tokens=9),
    )
    root = backend(provider, server, ROOT[provider])
    sub = backend(provider, sub_server, SUB[provider], RetryPolicy(max_attempts=2, base_delay=0.01, read_timeout=0.5))
    trace = tmp_path / "t.jsonl"
    result = RLM(model=root, sub_model=sub, repl="process", trace=trace).run("Ask about each item.", "ctx")

    assert result.status == "final", result.error
    answers = json.loads(result.answer or "null")
    assert len(answers) == len(prompts)
    for prompt, got in zip(prompts, answers, strict=True):
        want = SUB_ITEMS[prompt][1]
        assert got.startswith(want), (prompt, got)
    assert "bad_request" in answers[prompts.index("item-rejected")]
    assert "this item is invalid" in answers[prompts.index("item-rejected")]
    assert "timeout" in answers[prompts.index("item-timeout")]

    assert server.count == 2
    assert sub_server.count == sum(len(b) for b, _ in SUB_ITEMS.values())  # every attempt, no more
    assert sub_server.remaining == 0
    assert result.usage[sub.name].calls == 7  # the two failed items cost nothing ...
    # 98/35 from the successful replies plus 50/9 billed for the empty attempt that was retried.
    assert (result.usage[sub.name].input_tokens, result.usage[sub.name].output_tokens) == (148, 44)
    assert_usage_is_what_was_served(result, {root.name: root, sub.name: sub}, server, sub_server)
    b = books(result, trace)
    assert len(b.requests) == 2 + len(prompts)  # ... but are two attempts in the ledger
    assert len(b.failed) == 2
    assert sorted(r.data["model"] for r in b.failed) == [sub.name, sub.name]
    assert result.subcalls == 1


# -- 4. root and sub-model on different wire formats, in one run ----------------------------------


def test_root_openai_sub_anthropic_usage_per_model(server: FaultServer, tmp_path: Path) -> None:
    server.route("SUB-X", ok("ex", input_tokens=30, output_tokens=3, cached_tokens=200, cache_creation_tokens=50))
    server.route("SUB-Y", ok("why", input_tokens=40, output_tokens=4))
    server.script(
        ok(code("r = llm_batch(['SUB-X', 'SUB-Y'])\nprint(r)"), input_tokens=1000, output_tokens=20, cached_tokens=600),
        ok(code("FINAL(' '.join(r))"), input_tokens=1100, output_tokens=8, cached_tokens=1000),
    )
    root = backend("openai", server, "gpt-4.1-mini")
    sub = backend("anthropic", server, "claude-haiku-4-5")
    trace = tmp_path / "t.jsonl"
    result = RLM(model=root, sub_model=sub, repl="inprocess", trace=trace).run("q", "ctx")

    assert (result.status, result.answer) == ("final", "ex why")
    paths = [r.path for r in server.received]
    assert paths.count("/v1/chat/completions") == 2
    assert paths.count("/v1/messages") == 2
    assert set(result.usage) == {"openai/gpt-4.1-mini", "anthropic/claude-haiku-4-5"}
    o, a = result.usage["openai/gpt-4.1-mini"], result.usage["anthropic/claude-haiku-4-5"]
    assert (o.calls, o.input_tokens, o.output_tokens, o.cached_input_tokens) == (2, 2100, 28, 1600)
    # Anthropic's input_tokens excludes cache reads and writes; the backend reports the whole prompt.
    assert (a.calls, a.input_tokens, a.output_tokens, a.cached_input_tokens) == (2, 320, 7, 200)
    pin, pout, pcached = lookup_price("gpt-4.1-mini", backend="openai") or (0, 0, 0)
    assert o.cost_usd == pytest.approx((500 * pin + 1600 * pcached + 28 * pout) / 1e6)
    pin, pout, pcached = lookup_price("claude-haiku-4-5", backend="anthropic") or (0, 0, 0)
    # 5-minute cache writes cost 1.25x the input price
    assert a.cost_usd == pytest.approx((70 * pin + 50 * 1.25 * pin + 200 * pcached + 7 * pout) / 1e6)
    b = books(result, trace)
    assert len(b.requests) == 4 and not b.failed


# -- 5. the response cache ------------------------------------------------------------------------


def _cached_rlm(provider: str, server: FaultServer, cache: Path, trace: Path) -> tuple[RLM, Any]:
    lm = backend(provider, server, ROOT[provider])
    return RLM(model=lm, repl="inprocess", trace=trace, cache=cache), lm


def test_cache_second_run_makes_no_request(provider: str, server: FaultServer, tmp_path: Path) -> None:
    server.route("PROMPT-ONE", ok("one", input_tokens=21, output_tokens=2))
    server.route("PROMPT-TWO", ok("two", input_tokens=22, output_tokens=3))
    server.script(
        ok(code("r = llm_batch(['PROMPT-ONE', 'PROMPT-TWO'])\nprint(r)"), input_tokens=800, output_tokens=30),
        ok(code("FINAL(' + '.join(r))"), input_tokens=900, output_tokens=10),
    )
    cache = tmp_path / "cache.sqlite"
    rlm, lm = _cached_rlm(provider, server, cache, tmp_path / "first.jsonl")
    first = rlm.run("Combine the answers.", "ctx")
    assert (first.status, first.answer) == ("final", "one + two")
    assert server.count == 4
    b1 = books(first, tmp_path / "first.jsonl")
    assert not b1.hits
    assert_usage_is_what_was_served(first, {lm.name: lm}, server)

    rlm, lm = _cached_rlm(provider, server, cache, tmp_path / "second.jsonl")
    second = rlm.run("Combine the answers.", "ctx")
    assert (second.status, second.answer) == ("final", "one + two")
    assert server.count == 4  # no request reached the network
    b2 = books(second, tmp_path / "second.jsonl")
    assert len(b2.requests) == 4
    assert len(b2.hits) == 4  # every lm_response is marked cached ...
    for r in b2.responses:
        assert r.data["usage"]["input_tokens"] == r.data["usage"]["output_tokens"] == 0
        assert r.data["usage"]["cost_usd"] == 0.0
    u = second.usage[lm.name]  # ... and costs nothing
    assert (u.calls, u.input_tokens, u.output_tokens, u.cost_usd) == (4, 0, 0, 0.0)
    assert b2.ledger["tokens"] == 0 and b2.ledger["cost_usd"] == 0.0


def test_cache_is_keyed_by_the_question(server: FaultServer, tmp_path: Path) -> None:
    server.script(ok(code("FINAL('first')")), ok(code("FINAL('second')")))
    cache = tmp_path / "cache.sqlite"
    rlm, _ = _cached_rlm("openai", server, cache, tmp_path / "a.jsonl")
    assert rlm.run("question one", "ctx").answer == "first"
    rlm, _ = _cached_rlm("openai", server, cache, tmp_path / "b.jsonl")
    assert rlm.run("question two", "ctx").answer == "second"
    assert server.count == 2


def test_cache_same_rlm_instance_twice(server: FaultServer, tmp_path: Path) -> None:
    server.script(ok(code("FINAL('once')")))
    rlm, _ = _cached_rlm("openai", server, tmp_path / "cache.sqlite", tmp_path / "t.jsonl")
    assert rlm.run("q", "ctx").answer == "once"
    again = rlm.run("q", "ctx")
    assert (again.status, again.answer) == ("final", "once")
    assert server.count == 1


def test_cli_ask_cache(server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    from unbounded.cli import main

    server.script(
        ok(code("n = len(context.split())\nprint(n)"), input_tokens=500, output_tokens=20),
        ok(code("FINAL(f'{n} words')"), input_tokens=600, output_tokens=9),
    )
    cache_dir = tmp_path / "cache-dir"
    monkeypatch.setenv("UNBOUNDED_CACHE_DIR", str(cache_dir))
    doc = tmp_path / "doc.txt"
    doc.write_text("one two three four five\n")
    model = f"openai-compatible/scripted-model@{server.openai_url}"

    def ask(trace: Path) -> dict[str, Any]:
        argv = ["ask", "How many words?", str(doc), "--model", model, "--repl", "inprocess"]
        rc = main([*argv, "--cache", "--json", "-q", "--trace", str(trace)])
        out = capsys.readouterr().out
        assert rc == 0, out
        return json.loads(out)

    first = ask(tmp_path / "a.jsonl")
    assert (first["status"], first["answer"]) == ("final", "5 words")
    assert server.count == 2
    assert (cache_dir / "responses.sqlite").is_file()  # --cache writes to $UNBOUNDED_CACHE_DIR/responses.sqlite
    name = f"openai-compatible/scripted-model@{server.openai_url}"
    assert first["usage"][name]["input_tokens"] == 1100

    second = ask(tmp_path / "b.jsonl")
    assert (second["status"], second["answer"]) == ("final", "5 words")
    assert server.count == 2  # all answered from the cache
    assert second["usage"][name] == {
        "calls": 2,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_input_tokens": 0,
        "cost_usd": 0.0,
    }
    responses = [e for e in read_trace(tmp_path / "b.jsonl") if e.type == "lm_response"]
    assert len(responses) == 2 and all(e.data["cached"] is True for e in responses)


# -- 6. cost limits -------------------------------------------------------------------------------


def test_max_cost_with_unknown_price_refuses_to_start(server: FaultServer) -> None:
    unknown = resolve_model("openai/not-a-real-model-7", api_key="k", base_url=server.openai_url)
    known = backend("openai", server, "gpt-4.1-mini")
    assert unknown.price() is None
    budget = Budget(max_cost_usd=1.0)
    with pytest.raises(UnknownModelError, match="not-a-real-model-7"):
        RLM(model=unknown, budget=budget, repl="inprocess")
    with pytest.raises(UnknownModelError, match="price"):
        RLM(model=known, sub_model=unknown, budget=budget, repl="inprocess")
    with pytest.raises(UnknownModelError, match="price"):
        RLM(model=known, models={"other": unknown}, budget=budget, repl="inprocess")
    with pytest.raises(UnknownModelError, match="price"):  # a compatible server that is not on loopback
        RLM(model="openai-compatible/m@http://10.0.0.1:9/v1", budget=budget, repl="inprocess")
    assert server.count == 0
    # Without a cost limit, or with a price given, the same models are fine.
    RLM(model=unknown, repl="inprocess")
    priced = resolve_model("openai/not-a-real-model-7", api_key="k", base_url=server.openai_url, price=(1, 2, 0.5))
    RLM(model=priced, budget=budget, repl="inprocess")


def test_max_cost_unknown_price_with_cache_refuses(server: FaultServer, tmp_path: Path) -> None:
    unknown = resolve_model("openai/not-a-real-model-7", api_key="k", base_url=server.openai_url)
    with pytest.raises(UnknownModelError, match="price"):
        RLM(model=unknown, budget=Budget(max_cost_usd=1.0), repl="inprocess", cache=tmp_path / "c.sqlite")


def test_max_cost_limit_holds_under_concurrent_sub_calls(
    server: FaultServer, sub_server: FaultServer, tmp_path: Path
) -> None:
    """Reservations happen before the requests: the limit holds however many sub-calls are in flight."""
    n, limit, max_tokens = 20, 0.5, 100
    price = (1000.0, 1000.0, 0.0)  # $ per million tokens: $0.001 per token
    sub_server.script(*[ok("fine", input_tokens=10, output_tokens=5)] * n)
    server.script(
        ok(code(f"r = llm_batch(['q%02d' % i for i in range({n})])\nprint(r)"), input_tokens=700, output_tokens=30)
    )
    root = resolve_model(f"openai-compatible/free@{server.openai_url}", retry_policy=FAST)  # loopback: free
    sub = backend("openai", sub_server, "gpt-4.1-nano", price=price)
    trace = tmp_path / "t.jsonl"
    rlm = RLM(
        model=root,
        sub_model=sub,
        repl="inprocess",
        trace=trace,
        budget=Budget(max_cost_usd=limit),
        sub_model_options={"max_tokens": max_tokens},
    )
    result = rlm.run("q", "ctx")

    # Each sub-call reserves its worst case: every input byte a token, plus max_tokens of output.
    reserve = sub.cost(Usage(1, upper_bound_input_tokens([Message("user", "q00")]), max_tokens))
    fit = int(limit // reserve)
    assert 0 < fit < n
    assert result.status == "budget:max_cost_usd"
    assert sub_server.count == fit  # refused calls never reached the network
    u = result.usage[sub.name]
    assert (u.calls, u.input_tokens, u.output_tokens) == (fit, 10 * fit, 5 * fit)
    assert u.cost_usd == pytest.approx(fit * 15 * 0.001)
    b = books(result, trace)
    assert b.ledger["cost_usd"] <= limit
    assert b.ledger["exhausted"] == "max_cost_usd"
    assert len(b.requests) == 1 + fit  # refused calls were never started: no request, no response
    rename = {"openai/free": root.name}
    assert_usage_is_what_was_served(result, {root.name: root, sub.name: sub}, server, sub_server, rename=rename)
    assert result.usage[root.name].cost_usd == 0.0  # a loopback server is free


def test_max_cost_generous_limit_completes_with_exact_cost(server: FaultServer, tmp_path: Path) -> None:
    server.route("PRICED-SUB", ok("sub answer", input_tokens=100, output_tokens=10))
    server.script(
        ok(code("a = llm_query('PRICED-SUB')\nprint(a)"), input_tokens=1000, output_tokens=50),
        ok(code("FINAL(a)"), input_tokens=1200, output_tokens=5),
    )
    lm = backend("openai", server, "gpt-4.1-mini", price=(2.0, 8.0, 0.5))
    trace = tmp_path / "t.jsonl"
    result = RLM(model=lm, repl="inprocess", trace=trace, budget=Budget(max_cost_usd=1.0)).run("q", "ctx")
    assert (result.status, result.answer) == ("final", "sub answer")
    u = result.usage[lm.name]
    assert (u.calls, u.input_tokens, u.output_tokens) == (3, 2300, 65)
    assert u.cost_usd == pytest.approx((2300 * 2.0 + 65 * 8.0) / 1e6)
    assert_usage_is_what_was_served(result, {lm.name: lm}, server)
    books(result, trace)
