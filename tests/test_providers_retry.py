"""The shared call policy: Retry-After parsing, full-jitter backoff, classification, the loop."""

from __future__ import annotations

import email.utils
import random
import sys

import pytest

from unbounded.errors import ConfigError, MissingAPIKeyError, ModelError
from unbounded.models.options import api_key_from
from unbounded.models.retry import (
    AttemptError,
    RetryPolicy,
    call_with_retries,
    classify_status,
    parse_duration,
    parse_retry_after,
)
from unbounded.models.sdk import require_sdk
from unbounded.models.sdk_errors import classify_transport


def test_retry_after_seconds_and_ms() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    # the millisecond header is more precise and wins
    assert parse_retry_after({"retry-after-ms": "200", "Retry-After": "1"}) == 0.2
    assert parse_retry_after({}) is None
    assert parse_retry_after(None) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "-3"}) is None


def test_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    header = email.utils.formatdate(now + 42, usegmt=True)
    assert parse_retry_after({"Retry-After": header}, now=now) == pytest.approx(42.0)
    past = email.utils.formatdate(now - 10, usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=now) == 0.0


def test_parse_duration() -> None:
    assert parse_duration("33s") == 33.0
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("33") is None
    assert parse_duration(None) is None


def test_full_jitter_backoff_bounds() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    rng = random.Random(1)
    for n, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 4.0)]:
        draws = [policy.backoff(n, rng) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in draws)
        assert max(draws) > cap * 0.8  # spread over the whole range, not a fixed step


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (400, "bad_request", False),
        (401, "auth", False),
        (403, "auth", False),
        (404, "not_found", False),
        (413, "context_length", False),
        (422, "bad_request", False),
        (408, "timeout", True),
        (409, "server", True),
        (429, "rate_limit", True),
        (500, "server", True),
        (502, "server", True),
        (503, "server", True),
        (529, "server", True),
    ],
)
def test_classify_status(status: int, kind: str, retryable: bool) -> None:
    err = classify_status(status, "msg")
    assert (err.kind, err.retryable, err.status) == (kind, retryable, status)


def test_classify_status_reads_headers() -> None:
    err = classify_status(429, "slow down", headers={"retry-after": "3"}, request_id="req_1")
    assert err.retry_after == 3.0 and err.request_id == "req_1"
    assert classify_status(503, "x", headers={"x-should-retry": "false"}).retryable is False
    assert classify_status(400, "x", headers={"x-should-retry": "true"}).retryable is True
    assert classify_status(401, "x", headers={"x-should-retry": "true"}).retryable is False
    assert classify_status(429, "quota", code="insufficient_quota").kind == "quota"


def test_classify_transport() -> None:
    import json

    assert classify_transport(TimeoutError()).kind == "timeout"
    assert classify_transport(ConnectionResetError()).kind == "connection"
    try:
        json.loads("{")
    except ValueError as exc:
        assert classify_transport(exc).kind == "malformed"
    assert classify_transport(KeyError("x")) is None


class Script:
    """An attempt function that fails as scripted, then succeeds."""

    def __init__(self, *failures: AttemptError | Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, d: float) -> None:
        self.delays.append(d)


def _none(exc: BaseException) -> None:
    return None


async def test_loop_retries_then_succeeds() -> None:
    attempt = Script(AttemptError("server", "boom", True, 500), AttemptError("rate_limit", "slow", True, 429, 2.0))
    sleeps = Sleeps()
    result, attempts = await call_with_retries(
        attempt, RetryPolicy(base_delay=0.1), classify=_none, label="m", sleep=sleeps, rng=random.Random(0)
    )
    assert (result, attempts, attempt.calls) == ("done", 3, 3)
    assert 0 <= sleeps.delays[0] <= 0.1
    assert sleeps.delays[1] >= 2.0  # Retry-After honoured, jitter only adds


async def test_loop_stops_at_max_attempts() -> None:
    attempt = Script(*[AttemptError("server", "boom", True, 503) for _ in range(10)])
    with pytest.raises(ModelError) as info:
        await call_with_retries(attempt, RetryPolicy(max_attempts=3), classify=_none, label="m", sleep=Sleeps())
    assert attempt.calls == 3
    assert info.value.kind == "server"
    assert "after 3 attempts" in str(info.value)
    assert info.value.attempts == 3  # type: ignore[attr-defined]


async def test_loop_does_not_retry_permanent_errors() -> None:
    attempt = Script(AttemptError("auth", "bad key", False, 401))
    with pytest.raises(ModelError) as info:
        await call_with_retries(attempt, RetryPolicy(), classify=_none, label="m", sleep=Sleeps())
    assert attempt.calls == 1
    assert info.value.kind == "auth" and not info.value.retryable


async def test_empty_is_retried_once_without_delay() -> None:
    attempt = Script(AttemptError("empty", "no text", True), AttemptError("empty", "no text", True))
    sleeps = Sleeps()
    with pytest.raises(ModelError) as info:
        await call_with_retries(attempt, RetryPolicy(max_attempts=5), classify=_none, label="m", sleep=sleeps)
    assert attempt.calls == 2
    assert info.value.kind == "empty"
    assert sleeps.delays == []


async def test_unclassified_exceptions_propagate() -> None:
    attempt = Script(KeyError("bug"))
    with pytest.raises(KeyError):
        await call_with_retries(attempt, RetryPolicy(), classify=_none, label="m", sleep=Sleeps())


async def test_classifier_is_used_for_sdk_exceptions() -> None:
    attempt = Script(ConnectionResetError("reset"))
    result, attempts = await call_with_retries(
        attempt, RetryPolicy(base_delay=0), classify=classify_transport, label="m", sleep=Sleeps()
    )
    assert (result, attempts) == ("done", 2)


def test_policy_validation_and_options() -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigError):
        RetryPolicy(read_timeout=-1)
    opts = {"max_attempts": 2, "timeout": 60, "connect_timeout": 3, "other": 1}
    policy = RetryPolicy.from_options(opts)
    assert (policy.max_attempts, policy.read_timeout, policy.connect_timeout) == (2, 60.0, 3.0)
    assert opts == {"other": 1}  # consumed keys are removed


def test_api_key_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIRST_KEY", raising=False)
    monkeypatch.setenv("SECOND_KEY", "from-env")
    assert api_key_from({}, ["FIRST_KEY", "SECOND_KEY"], "p") == "from-env"
    assert api_key_from({"api_key": "given"}, ["FIRST_KEY"], "p") == "given"
    with pytest.raises(MissingAPIKeyError, match="FIRST_KEY"):
        api_key_from({}, ["FIRST_KEY"], "p")


@pytest.mark.parametrize(
    ("module", "spec", "extra"),
    [
        ("openai", "openai/gpt-5-mini", "openai"),
        ("openai", "ollama/llama3.2", "openai"),
        ("anthropic", "anthropic/claude-haiku-4-5", "anthropic"),
        ("google.genai", "gemini/gemini-2.5-flash", "gemini"),
    ],
)
def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch, module: str, spec: str, extra: str) -> None:
    from unbounded.models import resolve_model

    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ConfigError, match=rf"pip install 'unbounded\[{extra}\]'"):
        resolve_model(spec, api_key="k")


def test_require_sdk_returns_the_module() -> None:
    assert require_sdk("json", "x", "y").__name__ == "json"
