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
* Streaming uses the raw events (``stream=True``): the usage of ``message_start`` (input and cache
  counts) merged with the cumulative counts of ``message_delta`` (output, and input where the API
  sends it again); a stream that ends before ``message_stop`` failed. An ``error`` event inside a
  200 response (``overloaded_error`` mid-stream) is classified by its error type.
* Structured output (the ``schema`` option) is a forced tool: one tool named ``answer`` whose
  input schema is the schema (wrapped as ``{"value": ...}`` when its root is not an object) and
  ``tool_choice`` naming it. The completion's text is the tool input as JSON; streamed, it is the
  ``input_json_delta`` pieces as the model writes them.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Unpack

from ..errors import ConfigError
from .base import Completion, LMBase, Message, Usage
from .cache import maybe_cached
from .options import BACKEND_OPTIONS, api_key_from, pop_max_concurrency, reject_unknown
from .pricing import lookup_context_window, lookup_price, parse_price
from .remote import RemoteLM, RemoteOptions
from .retry import AttemptError, RetryPolicy, classify_status
from .schema import check_schema, is_wrapped, object_root
from .sdk import http_client, require_sdk
from .sdk_errors import classify_exception
from .streaming import ReplyText

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

#: The forced tool that carries a structured answer.
ANSWER_TOOL = "answer"

# The HTTP status each error type of the Messages API comes with, for errors sent inside a stream.
_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


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
        schema = check_schema(opts.get("schema"))
        if schema is not None:
            wire, _ = object_root(schema)
            request["tools"] = [
                {
                    "name": ANSWER_TOOL,
                    "description": "Give the answer, in exactly this shape.",
                    "input_schema": wire,
                }
            ]
            request["tool_choice"] = {"type": "tool", "name": ANSWER_TOOL}
        if self._extra_body:
            request["extra_body"] = dict(self._extra_body)
        return request

    def _parse(self, response: Any, opts: dict[str, Any]) -> Completion:
        content = getattr(response, "content", None)
        raw_usage = getattr(response, "usage", None)
        if content is None or raw_usage is None:
            raise AttemptError("malformed", f"not a Messages API response: {str(response)[:200]!r}", True)
        if opts.get("schema") is not None:
            inputs = [
                b.input
                for b in content
                if getattr(b, "type", None) == "tool_use" and getattr(b, "name", "") == ANSWER_TOOL
            ]
            text = json.dumps(inputs[0], ensure_ascii=False) if inputs else ""
        else:
            text = "".join(getattr(b, "text", "") or "" for b in content if getattr(b, "type", None) == "text")
        stop_reason = getattr(response, "stop_reason", None)
        usage, written, read = self._usage(raw_usage, None)
        if not text.strip():
            raise AttemptError("empty", f"the completion has no text (stop_reason={stop_reason!r})", True, billed=usage)
        text = ReplyText.whole(text, unwrap=is_wrapped(opts.get("schema")))
        return self._completion(
            text,
            usage,
            written,
            read,
            getattr(response, "model", None),
            stop_reason,
            getattr(response, "_request_id", None),
        )

    def _usage(self, start: Any, final: Any) -> tuple[Usage, int, int]:
        """Usage from the response (or ``message_start``), with ``message_delta``'s cumulative counts
        taking precedence where the stream sent them. Returns it with the cache writes and reads."""

        def count(name: str) -> int:
            for source in (final, start):
                value = getattr(source, name, None) if source is not None else None
                if value is not None:
                    return int(value)
            return 0

        fresh = count("input_tokens")
        read = count("cache_read_input_tokens")
        written = count("cache_creation_input_tokens")
        usage = Usage(
            calls=1,
            input_tokens=fresh + read + written,
            output_tokens=count("output_tokens"),
            cached_input_tokens=read,
        )
        breakdown = getattr(final, "cache_creation", None) or getattr(start, "cache_creation", None)
        usage.cost_usd = self._cost_with_writes(usage, written, breakdown)
        return usage, written, read

    def _completion(
        self,
        text: str,
        usage: Usage,
        written: int,
        read: int,
        model: str | None,
        stop_reason: str | None,
        request_id: str | None,
    ) -> Completion:
        extra: dict[str, Any] = {"cache_creation_input_tokens": written, "cache_read_input_tokens": read}
        if request_id:
            extra["request_id"] = request_id
        return Completion(text=text, usage=usage, model=model or self.model, finish_reason=stop_reason, extra=extra)

    async def _stream_events(
        self, client: Any, request: dict[str, Any], opts: dict[str, Any]
    ) -> AsyncGenerator[str | Completion, None]:
        stream = await client.messages.create(**request, stream=True)
        tool_mode = opts.get("schema") is not None
        reply = ReplyText(unwrap=is_wrapped(opts.get("schema")))
        start_usage: Any = None
        final_usage: Any = None
        model: str | None = None
        stop_reason: str | None = None
        in_answer = False  # inside the forced tool's content block
        seen = False
        finished = False
        try:
            async for event in stream:
                kind = getattr(event, "type", None)
                piece = ""
                if kind == "message_start":
                    message = event.message
                    start_usage = getattr(message, "usage", None)
                    model = getattr(message, "model", None)
                elif kind == "content_block_start":
                    block = event.content_block
                    btype = getattr(block, "type", None)
                    in_answer = tool_mode and btype == "tool_use" and getattr(block, "name", "") == ANSWER_TOOL
                    if btype == "text" and not tool_mode:
                        piece = getattr(block, "text", "") or ""
                elif kind == "content_block_delta":
                    delta = event.delta
                    dtype = getattr(delta, "type", None)
                    if dtype == "text_delta" and not tool_mode:
                        piece = delta.text or ""
                    elif dtype == "input_json_delta" and in_answer:
                        piece = delta.partial_json or ""
                elif kind == "content_block_stop":
                    if in_answer and not seen:
                        piece = "{}"  # a tool call with an empty input streams no JSON at all
                        seen = True
                    in_answer = False
                elif kind == "message_delta":
                    stop_reason = getattr(event.delta, "stop_reason", None) or stop_reason
                    final_usage = getattr(event, "usage", None) or final_usage
                elif kind == "message_stop":
                    finished = True
                if piece:
                    seen = seen or bool(piece.strip())
                    out = reply.feed(piece)
                    if out:
                        yield out
        finally:
            await stream.close()
        if not finished:
            raise AttemptError("connection", "the stream ended before message_stop", True)
        usage, written, read = self._usage(start_usage, final_usage)
        if not seen:
            raise AttemptError("empty", f"the completion has no text (stop_reason={stop_reason!r})", True, billed=usage)
        tail = reply.finish()
        if tail:
            yield tail
        headers = getattr(getattr(stream, "response", None), "headers", None)
        rid = headers.get("request-id") if headers is not None else None
        yield self._completion(reply.text, usage, written, read, model, stop_reason, rid)

    def classify(self, exc: BaseException) -> AttemptError | None:
        """SDK errors by status; an ``error`` event inside a streamed 200 response by its error type."""
        status = getattr(exc, "status_code", None)
        body = getattr(exc, "body", None)
        if isinstance(status, int) and status < 400 and isinstance(body, dict):
            error = body.get("error") if isinstance(body.get("error"), dict) else {}
            etype = str(error.get("type") or "")
            return classify_status(
                _ERROR_TYPE_STATUS.get(etype, 500),
                f"error event in the stream: {etype or 'unknown'}: {error.get('message') or body}",
                code=etype,
            )
        return classify_exception(exc)

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
