"""The call policy every remote backend shares: timeouts, retries with backoff, error mapping.

Written once so that all providers behave alike:

* Each backend turns one HTTP call into one *attempt* and translates whatever its SDK raised
  into an :class:`AttemptError` (a ``kind``, whether retrying can help, an optional server-given
  wait; see ``sdk_errors.py``). The SDKs' own retries are switched off (``max_retries=0``) so this
  is the only loop.
* :func:`call_with_retries` runs attempts until one succeeds, sleeping between them with
  exponential backoff and *full jitter* (a uniform draw in ``[0, min(cap, base·2ⁿ)]``, which
  spreads out many clients that failed together) or, when the server said how long to wait
  (``retry-after-ms``, ``Retry-After`` in seconds or as an HTTP date, Gemini's ``RetryInfo``),
  at least that long.
* Only the attempt that succeeded produces a result, so a retried call is counted once; tokens
  the provider billed for failed attempts (empty completions) are added to it, or carried by the
  final error.
* The last failure becomes the :class:`~unbounded.errors.ModelError` subclass of its kind
  (``RateLimitError``, ``ContextLengthError``…) with a message that says what to do about it.
* A streamed call is one attempt until its first delta: a stream that fails before any text is
  retried like any call; one that fails after text was delivered is not (the caller has seen that
  text) and becomes its ``ModelError`` at once, saying so (:func:`stream_failure`).

Why not the SDKs' retries or tenacity: each SDK has its own rules (which statuses, how long a
``Retry-After`` it honours, none of them counts billed empty replies), and a tenacity version
needs the same classification, the same cap on server-given waits and the same accounting as
callbacks around it: no less code, and four behaviours instead of one.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ..errors import ConfigError, ModelError, UnboundedError, model_error_class
from .base import Usage

log = logging.getLogger("unbounded.models")

T = TypeVar("T")

#: Failure kinds a backend reports; ``ModelError.kind`` is one of these.
KINDS = (
    "rate_limit",
    "quota",
    "timeout",
    "connection",
    "server",
    "bad_request",
    "context_length",
    "auth",
    "not_found",
    "malformed",
    "empty",
)


#: Option names :meth:`RetryPolicy.from_options` consumes.
POLICY_OPTIONS = (
    "retry_policy",
    "max_attempts",
    "max_retries",
    "retry_base_delay",
    "retry_max_delay",
    "max_retry_after",
    "timeout",
    "read_timeout",
    "connect_timeout",
    "empty_retries",
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a remote backend calls its server.

    ``read_timeout`` is long by default because reasoning models can think for minutes before
    the first byte; ``connect_timeout`` is short because a server that does not accept a
    connection in seconds is down. ``max_attempts`` counts the first try. ``empty_retries``
    is separate: an empty completion is retried that many times, then reported.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    empty_retries: int = 1

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {self.max_attempts}")
        for name in ("base_delay", "max_delay", "max_retry_after", "connect_timeout", "read_timeout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.empty_retries < 0:
            raise ConfigError(f"empty_retries must not be negative, got {self.empty_retries}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> RetryPolicy:
        """Build a policy from backend options, removing the keys it uses.

        Accepted keys: ``max_attempts`` (or ``max_retries`` = attempts - 1), ``retry_base_delay``,
        ``retry_max_delay``, ``max_retry_after``, ``timeout`` (sets the read timeout),
        ``read_timeout``, ``connect_timeout``, ``empty_retries``, or a ready ``retry_policy``.
        """
        base = options.pop("retry_policy", None) or cls()
        if not isinstance(base, RetryPolicy):
            raise ConfigError(f"retry_policy must be a RetryPolicy, got {type(base).__name__}")
        changes: dict[str, Any] = {}
        if "max_retries" in options:
            changes["max_attempts"] = int(options.pop("max_retries")) + 1
        if "max_attempts" in options:
            changes["max_attempts"] = int(options.pop("max_attempts"))
        for opt, attr in (
            ("retry_base_delay", "base_delay"),
            ("retry_max_delay", "max_delay"),
            ("max_retry_after", "max_retry_after"),
            ("timeout", "read_timeout"),
            ("read_timeout", "read_timeout"),
            ("connect_timeout", "connect_timeout"),
        ):
            if opt in options:
                changes[attr] = float(options.pop(opt))
        if "empty_retries" in options:
            changes["empty_retries"] = int(options.pop("empty_retries"))
        return replace(base, **changes) if changes else base

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Full-jitter delay before retry ``retry_number`` (1 for the first retry)."""
        cap = min(self.max_delay, self.base_delay * (2 ** max(retry_number - 1, 0)))
        return (rng or random).uniform(0.0, cap)


@dataclass(eq=False)
class AttemptError(UnboundedError):
    """One failed attempt, already classified. Backends raise it from their attempt function."""

    kind: str
    message: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    request_id: str | None = None
    hint: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    #: Tokens the provider billed for this failed attempt (an empty completion still costs its tokens).
    billed: Usage | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message


# -- reading what the server said -----------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, or None.

    ``retry-after-ms`` (milliseconds, sent by OpenAI and Anthropic) wins over ``Retry-After``,
    which is either delta-seconds or an HTTP date (RFC 9110 §10.2.3). Negative or unparseable
    values are ignored.
    """
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
            if value >= 0:
                return value
        except ValueError:
            pass
    ra = lower.get("retry-after")
    if ra is None:
        return None
    ra = ra.strip()
    try:
        value = float(ra)
        return value if value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def parse_duration(text: str | None) -> float | None:
    """Parse a protobuf Duration string such as ``"33s"`` or ``"1.5s"``."""
    if not text or not isinstance(text, str) or not text.endswith("s"):
        return None
    try:
        value = float(text[:-1])
    except ValueError:
        return None
    return value if value >= 0 else None


def should_retry_header(headers: Mapping[str, str] | None) -> bool | None:
    """The ``x-should-retry`` hint OpenAI and Anthropic send; None when absent."""
    if not headers:
        return None
    for k, v in headers.items():
        if str(k).lower() == "x-should-retry":
            if str(v).lower() == "true":
                return True
            if str(v).lower() == "false":
                return False
    return None


def classify_status(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    code: str | None = None,
    request_id: str | None = None,
) -> AttemptError:
    """Map an HTTP error status to an :class:`AttemptError`, the same way for every provider.

    Retried: 408, 409, 429 and 5xx (incl. Anthropic's 529 "overloaded"). Not retried: 400, 401,
    403, 404, 413, 422 and any other 4xx, because sending the same request again gets the same
    answer. A 429 whose code says the account is out of credit (``insufficient_quota``) is not
    retried either. The server's ``x-should-retry`` header, when present, overrides the status.
    """
    lowered = (message or "").lower()
    code_l = (code or "").lower()
    retry_after = parse_retry_after(headers)
    if status == 429:
        if "insufficient_quota" in code_l or "insufficient_quota" in lowered or "credit" in lowered:
            err = AttemptError("quota", message, False, status)
        else:
            err = AttemptError("rate_limit", message, True, status, retry_after)
    elif status == 408:
        err = AttemptError("timeout", message, True, status, retry_after)
    elif status == 409 or status >= 500:
        err = AttemptError("server", message, True, status, retry_after)
    elif status in (401, 403):
        err = AttemptError("auth", message, False, status)
    elif status == 404:
        err = AttemptError("not_found", message, False, status)
    elif status == 413 or _is_context_length(lowered, code_l):
        err = AttemptError("context_length", message, False, status)
    else:
        err = AttemptError("bad_request", message, False, status)
    hint = should_retry_header(headers)
    if hint is not None and err.kind not in ("auth", "not_found", "quota"):
        err.retryable = hint
    err.request_id = request_id
    return err


def _is_context_length(message: str, code: str) -> bool:
    return (
        "context_length" in code
        or "context length" in message
        or "context_length" in message
        or "prompt is too long" in message
        or "maximum context" in message
        or "too many tokens" in message
    )


# -- the loop -------------------------------------------------------------------------------------

Classifier = Callable[[BaseException], AttemptError | None]


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    classify: Classifier,
    label: str,
    advice: Mapping[str, str] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> tuple[T, int]:
    """Run ``attempt`` until it succeeds; return its result and the number of attempts made.

    ``classify`` turns an exception from the SDK into an :class:`AttemptError` (None means "not
    ours": the exception propagates unchanged, e.g. a programming error). ``label`` names the
    model in messages. ``advice`` may override the per-kind "what to do" sentence.
    Raises :class:`ModelError` when attempts are exhausted or the failure is not retryable.
    Tokens billed for failed attempts are added to the result's ``usage``.
    """
    result, attempts, billed = await call_with_retries_billed(
        attempt, policy, classify=classify, label=label, advice=advice, sleep=sleep, rng=rng
    )
    add_billed(result, billed)
    return result, attempts


async def call_with_retries_billed(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    classify: Classifier,
    label: str,
    advice: Mapping[str, str] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> tuple[T, int, Usage]:
    """``call_with_retries`` that returns the tokens billed for failed attempts instead of adding
    them: for a result whose usage is known only later (an opened stream)."""
    attempts = 0
    empties = 0
    billed = Usage(calls=0, cost_usd=0.0)
    while True:
        attempts += 1
        try:
            result = await attempt()
            return result, attempts, billed
        except asyncio.CancelledError:
            raise
        except AttemptError as exc:
            err = exc
        except Exception as exc:
            classified = classify(exc)
            if classified is None:
                raise
            err = classified
            err.__cause__ = exc
        if err.billed is not None:
            billed.add(
                Usage(
                    0,
                    err.billed.input_tokens,
                    err.billed.output_tokens,
                    err.billed.cached_input_tokens,
                    err.billed.cost_usd,
                )
            )
        if err.kind == "empty":
            empties += 1
            can_retry = empties <= policy.empty_retries and attempts < policy.max_attempts
        else:
            can_retry = err.retryable and attempts < policy.max_attempts
        delay = 0.0
        if can_retry:
            retry_number = attempts - empties if err.kind != "empty" else 0
            delay = _delay_for(err, policy, retry_number, rng)
            if delay is None:  # the server asked for longer than we are willing to wait
                raise _final_error(err, attempts, label, advice, waited_too_long=True, billed=billed) from err
        if not can_retry:
            raise _final_error(err, attempts, label, advice, billed=billed) from err
        log.info(
            "%s: attempt %d failed (%s%s); retrying in %.2fs",
            label,
            attempts,
            err.kind,
            f" {err.status}" if err.status else "",
            delay,
        )
        if delay > 0:
            await sleep(delay)


def _delay_for(err: AttemptError, policy: RetryPolicy, retry_number: int, rng: random.Random | None) -> float | None:
    if err.kind == "empty":
        return 0.0
    if err.retry_after is not None:
        if err.retry_after > policy.max_retry_after:
            return None
        # Honour the server's wait, plus a little jitter so that clients told the same thing
        # do not all come back in the same instant.
        return err.retry_after + (rng or random).uniform(0.0, min(policy.base_delay, 1.0) * 0.1)
    return policy.backoff(max(retry_number, 1), rng)


_ADVICE = {
    "rate_limit": "The provider is rate limiting this key: lower max_concurrency, raise max_attempts, "
    "or wait and retry.",
    "quota": "The account has no quota or credit left: check billing with the provider.",
    "timeout": "No response in time: raise the read_timeout option (seconds) for slow or reasoning "
    "models, or check that the server is not overloaded.",
    "connection": "Could not reach the server: check the base_url, that the server is running, and the network.",
    "server": "The provider had a server-side failure: try again later or use another model.",
    "bad_request": "The request was rejected as invalid: check the model name and options "
    "(max_tokens, temperature, stop); retrying the same request will not help.",
    "context_length": "The prompt is longer than the model accepts: send less text per call.",
    "auth": "The API key was refused: check the key (and that it may use this model).",
    "not_found": "The model or endpoint does not exist: check the model name and base_url.",
    "malformed": "The server's reply was not the JSON the protocol requires: check that base_url "
    "points at an API of the right kind.",
    "empty": "The model returned no text: raise max_tokens (reasoning models can spend the whole "
    "budget thinking) or rephrase the prompt.",
}


def _final_error(
    err: AttemptError,
    attempts: int,
    label: str,
    advice: Mapping[str, str] | None,
    *,
    waited_too_long: bool = False,
    billed: Usage | None = None,
) -> ModelError:
    tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
    status = f" (HTTP {err.status})" if err.status else ""
    what = (advice or {}).get(err.kind) or _ADVICE.get(err.kind, "")
    if err.hint:
        what = f"{err.hint} {what}".strip()
    if waited_too_long and err.retry_after is not None:
        what = (
            f"The server asked to wait {err.retry_after:.0f}s, longer than max_retry_after; "
            f"raise max_retry_after to wait that long. {what}"
        )
    rid = f" [request id {err.request_id}]" if err.request_id else ""
    message = f"{label}: {err.kind}{status} {tries}: {err.message.rstrip().rstrip('.')}{rid}. {what}".strip()
    exc = model_error_class(err.kind)(
        message,
        kind=err.kind,
        retryable=err.retryable or waited_too_long,
        attempts=attempts,
        status=err.status,
        request_id=err.request_id,
    )
    if billed is not None and billed.total_tokens:
        exc.billed = billed
    return exc


def stream_failure(
    err: AttemptError,
    *,
    label: str,
    attempts: int,
    streamed_chars: int,
    billed: Usage | None = None,
    advice: Mapping[str, str] | None = None,
) -> ModelError:
    """The error for a stream that broke after ``streamed_chars`` characters had been delivered.

    Not retried: the caller has already seen (and may have shown) that text, and a new attempt would
    not continue it. ``retryable`` still says whether making the whole call again could succeed.
    """
    stalled = AttemptError(
        err.kind,
        f"the stream broke after {streamed_chars} characters of the reply had been delivered "
        f"(the caller has seen that partial text, so the call was not retried): {err.message}",
        err.retryable,
        err.status,
        request_id=err.request_id,
        hint=err.hint,
    )
    return _final_error(stalled, attempts, label, {**_STREAM_ADVICE, **(advice or {})}, billed=billed)


_STREAM_ADVICE = {
    "connection": "The connection dropped during the reply: make the call again; if long replies keep "
    "breaking, look for a proxy or load balancer with a short timeout between you and the server.",
    "timeout": "The server went silent during the reply for longer than read_timeout: raise the "
    "read_timeout option (seconds) or make the call again.",
    "malformed": "The stream did not follow the provider's protocol to its end: check that base_url "
    "points at an API of the right kind.",
}


def add_billed(result: Any, billed: Usage) -> None:
    """Fold the tokens of billed failed attempts into a successful completion's usage."""
    usage = getattr(result, "usage", None)
    if not billed.total_tokens or not isinstance(usage, Usage):
        return
    usage.add(billed)
    extra = getattr(result, "extra", None)
    if isinstance(extra, dict):
        extra["billed_failed_attempts"] = billed.to_dict()
