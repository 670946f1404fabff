"""Anthropic Messages API on the official ``anthropic`` SDK: ``anthropic/<model>``.

What differs from Chat Completions, and how it is handled:

* System messages go in the ``system`` parameter, not in ``messages``; consecutive turns of the
  same role are merged, since the API expects user and assistant to alternate.
* ``max_tokens`` is required: the caller's value, else ``default_max_tokens`` (8192: enough for
  a code turn plus the thinking that newer models do by default).
* Sampling parameters are not sent. API version 2026-10-21, which SDK 2.x speaks, rejects
  ``temperature``/``top_p``/``top_k`` at any value (Opus 4.7+ rejected them before that), so a
  ``temperature`` option is ignored, as the protocol allows for what a backend cannot honour.
  ``seed`` does not exist on this API. ``stop`` becomes ``stop_sequences``.
* Prompt caching of the stable prefix: ``cache_control`` breakpoints on the system prompt and,
  once a conversation has gone past its first turn, on the first user message (the RLM's
  metadata and question) and on the newest message (so the next turn reads the whole history
  from cache). A one-shot call (a single user message, e.g. an ``llm_query`` over one chunk)
  gets no message breakpoint, because a cache write costs 1.25× and would never be read.
  ``prompt_cache=False`` turns breakpoints off; ``cache_ttl="1h"`` asks for the 1-hour cache.
* Usage: Anthropic's ``input_tokens`` excludes cache reads and writes; here ``input_tokens`` is
  the total prompt (fresh + ``cache_read_input_tokens`` + ``cache_creation_input_tokens``) and
  ``cached_input_tokens`` the cache reads, matching the other backends. The cost includes the
  cache-write premium (1.25× input for 5-minute entries, 2× for 1-hour entries).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Unpack

from ..errors import ConfigError
from .base import Completion, LMBase, Message, Usage
from .cache import maybe_cached
from .options import BACKEND_OPTIONS, api_key_from, pop_max_concurrency, reject_unknown
from .pricing import lookup_context_window, lookup_price, parse_price
from .remote import RemoteLM, RemoteOptions
from .retry import AttemptError, RetryPolicy
from .sdk import http_client, require_sdk

_OPTIONS = (
    *BACKEND_OPTIONS,
    "prompt_cache",
    "cache_ttl",
    "extra_body",
    "headers",
    "cache",
    "small",
)

# Cache-write price as a multiple of the input price, by TTL.
_WRITE_MULTIPLIER = {"5m": 1.25, "1h": 2.0}


class AnthropicLM(RemoteLM):
    """A Claude model over the Messages API.

    ``AnthropicLM("claude-sonnet-4-6", api_key=..., policy=RetryPolicy(...))``; ``base_url``
    defaults to the SDK's (api.anthropic.com, or ANTHROPIC_BASE_URL).
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        name: str | None = None,
        base_url: str | None = None,
        default_max_tokens: int = 8192,
        prompt_cache: bool = True,
        cache_ttl: str = "5m",
        extra_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **common: Unpack[RemoteOptions],
    ) -> None:
        if cache_ttl not in _WRITE_MULTIPLIER:
            raise ConfigError(f"cache_ttl must be '5m' or '1h', got {cache_ttl!r}")
        super().__init__(
            model,
            name=name or f"anthropic/{model}",
            default_max_tokens=default_max_tokens,
            **common,
        )
        self.base_url = base_url
        self.prompt_cache = prompt_cache
        self.cache_ttl = cache_ttl
        self._extra_body = dict(extra_body or {})
        self._headers = dict(headers or {})
        self._api_key = api_key

    async def _send(self, client: Any, request: dict[str, Any]) -> Any:
        return await client.messages.create(**request)

    # -- request/response ----------------------------------------------------------------------------
    def build_request(self, messages: Sequence[Message], **opts: Any) -> dict[str, Any]:
        """The keyword arguments for ``messages.create`` (public for tests and debugging)."""
        system_text = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
        turns = _alternate([m for m in messages if m.role != "system"])
        marker: dict[str, Any] = {"type": "ephemeral"}
        if self.cache_ttl != "5m":
            marker["ttl"] = self.cache_ttl
        marked: set[int] = set()
        if self.prompt_cache and len(turns) > 1:
            marked = {0, len(turns) - 1}
        wire_messages: list[dict[str, Any]] = []
        for i, (role, text) in enumerate(turns):
            if i in marked:
                content: Any = [{"type": "text", "text": text, "cache_control": dict(marker)}]
            else:
                content = text
            wire_messages.append({"role": role, "content": content})
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": int(opts.get("max_tokens") or self.default_max_tokens),
            "messages": wire_messages,
        }
        if system_text:
            block: dict[str, Any] = {"type": "text", "text": system_text}
            if self.prompt_cache:
                block["cache_control"] = dict(marker)
            request["system"] = [block]
        stop = opts.get("stop")
        if stop:
            request["stop_sequences"] = [stop] if isinstance(stop, str) else [str(s) for s in stop]
        if self._extra_body:
            request["extra_body"] = dict(self._extra_body)
        return request

    def _parse(self, response: Any, opts: dict[str, Any]) -> Completion:
        content = getattr(response, "content", None)
        raw_usage = getattr(response, "usage", None)
        if content is None or raw_usage is None:
            raise AttemptError("malformed", f"not a Messages API response: {str(response)[:200]!r}", True)
        text = "".join(getattr(b, "text", "") or "" for b in content if getattr(b, "type", None) == "text")
        stop_reason = getattr(response, "stop_reason", None)
        fresh = int(getattr(raw_usage, "input_tokens", 0) or 0)
        read = int(getattr(raw_usage, "cache_read_input_tokens", 0) or 0)
        written = int(getattr(raw_usage, "cache_creation_input_tokens", 0) or 0)
        usage = Usage(
            calls=1,
            input_tokens=fresh + read + written,
            output_tokens=int(getattr(raw_usage, "output_tokens", 0) or 0),
            cached_input_tokens=read,
        )
        usage.cost_usd = self._cost_with_writes(usage, written, getattr(raw_usage, "cache_creation", None))
        if not text.strip():
            raise AttemptError("empty", f"the completion has no text (stop_reason={stop_reason!r})", True, billed=usage)
        extra: dict[str, Any] = {"cache_creation_input_tokens": written, "cache_read_input_tokens": read}
        rid = getattr(response, "_request_id", None)
        if rid:
            extra["request_id"] = rid
        return Completion(
            text=text,
            usage=usage,
            model=getattr(response, "model", None) or self.model,
            finish_reason=stop_reason,
            extra=extra,
        )

    def _cost_with_writes(self, usage: Usage, written: int, breakdown: Any) -> float | None:
        """Standard cost, plus the premium for tokens written to the prompt cache.

        ``usage`` counts written tokens as plain input; the extra is (multiplier - 1) × input price.
        """
        base = self.cost(usage)
        price = self.price()
        if base is None or price is None or not written:
            return base
        one_hour = int(getattr(breakdown, "ephemeral_1h_input_tokens", 0) or 0) if breakdown else 0
        if breakdown is None and self.cache_ttl == "1h":
            one_hour = written
        five_min = max(written - one_hour, 0)
        premium = five_min * (_WRITE_MULTIPLIER["5m"] - 1) + one_hour * (_WRITE_MULTIPLIER["1h"] - 1)
        return base + premium * price[0] / 1e6

    def _make_client(self) -> Any:
        anthropic = require_sdk("anthropic", "anthropic", "anthropic")
        kwargs: dict[str, Any] = {
            "api_key": self._api_key,
            "max_retries": 0,  # retries live in unbounded.models.retry
            "timeout": anthropic.Timeout(self.policy.read_timeout, connect=self.policy.connect_timeout),
            "http_client": http_client(anthropic),
        }
        if self.base_url:
            kwargs["base_url"] = self.base_url
        if self._headers:
            kwargs["default_headers"] = self._headers
        return anthropic.AsyncAnthropic(**kwargs)


def _alternate(messages: Sequence[Message]) -> list[tuple[str, str]]:
    """User/assistant turns, merged where a role repeats, starting with a user turn."""
    turns: list[tuple[str, str]] = []
    for m in messages:
        role = "assistant" if m.role == "assistant" else "user"
        text = m.content if m.content.strip() else "(empty)"  # the API rejects blank text blocks
        if turns and turns[-1][0] == role:
            turns[-1] = (role, f"{turns[-1][1]}\n\n{text}")
        else:
            turns.append((role, text))
    if not turns or turns[0][0] != "user":
        turns.insert(0, ("user", "(continue)"))
    return turns


def create(rest: str, options: dict[str, Any]) -> LMBase:
    """``anthropic/<model>``: key from ``api_key=`` or ANTHROPIC_API_KEY."""
    if not rest:
        raise ConfigError("anthropic: the spec needs a model name, e.g. 'anthropic/claude-sonnet-4-6'")
    require_sdk("anthropic", "anthropic", "anthropic")
    opts = dict(options)
    key = api_key_from(opts, ["ANTHROPIC_API_KEY"], "anthropic")
    policy = RetryPolicy.from_options(opts)
    user_price = opts.pop("price", None)
    cache = opts.pop("cache", None)
    lm = AnthropicLM(
        rest,
        api_key=key,
        base_url=opts.pop("base_url", None) or os.environ.get("ANTHROPIC_BASE_URL") or None,
        policy=policy,
        max_concurrency=pop_max_concurrency(opts),
        context_window=opts.pop("context_window", None) or lookup_context_window(rest),
        default_max_tokens=int(opts.pop("default_max_tokens", None) or 8192),
        price=parse_price(user_price) if user_price is not None else lookup_price(rest, backend="anthropic"),
        prompt_cache=bool(opts.pop("prompt_cache", True)),
        cache_ttl=str(opts.pop("cache_ttl", "5m")),
        extra_body=opts.pop("extra_body", None),
        headers=opts.pop("headers", None),
        small=opts.pop("small", None),
    )
    reject_unknown(opts, "anthropic", _OPTIONS)
    return maybe_cached(lm, cache)
