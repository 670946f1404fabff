"""Google Gemini on Google's official ``google-genai`` SDK: ``gemini/<model>``.

Why the native SDK and not Gemini's OpenAI-compatible endpoint
(``generativelanguage.googleapis.com/v1beta/openai/``): ``google-genai`` is Google's generally
available, primary client (it replaced ``google-generativeai``), released in step with the API,
while the compatibility layer is a beta surface that lags features and documents gaps. The
native response also carries the counts that billing needs: ``thoughtsTokenCount`` (billed as
output, and absent from ``candidatesTokenCount``) and ``cachedContentTokenCount`` (implicit
caching, billed at the cache rate). Through the compatibility layer those are folded or missing.
For a Gemini model behind an OpenAI-style gateway, ``openai-compatible/...`` still works.

Details handled here:

* System messages become ``system_instruction``; ``assistant`` turns are role ``model``.
* Timeouts: google-genai takes one overall timeout per request and, when none is set, passes
  "no timeout" to its HTTP client on every request. We hand it our own ``httpx`` client with
  separate connect/read timeouts and stop the per-request override (see ``_TimeoutClient``).
* Retries: the SDK's are disabled with ``HttpRetryOptions(attempts=1)``; setting retry options
  also turns off the implicit reconnect-and-retry of its aiohttp path.
* Gemini reports how long to back off in the error body (``google.rpc.RetryInfo.retryDelay``)
  rather than in a ``Retry-After`` header; both are honoured.
* ``max_output_tokens`` on Gemini 2.5 covers thinking as well as the answer, so the default
  cap is generous (16384) to avoid empty replies that spent everything thinking.
* Streaming is ``generate_content_stream`` (``streamGenerateContent?alt=sse``): each chunk's text
  parts are delivered as they come; the usage is the last chunk's ``usageMetadata``, which holds the
  totals; a stream that ends before a chunk with a ``finishReason`` failed.
* Structured output (the ``schema`` option) is ``response_mime_type="application/json"`` with the
  schema as ``response_json_schema``, which takes JSON Schema as it is (``$defs``, ``anyOf``, any
  root type); ``response_schema`` takes only the OpenAPI subset that its ``Schema`` type models.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Unpack

from ..errors import ConfigError
from .base import Completion, LMBase, Message, Usage
from .cache import maybe_cached
from .options import BACKEND_OPTIONS, api_key_from, pop_max_concurrency, reject_unknown
from .pricing import lookup_context_window, lookup_price, parse_price
from .remote import RemoteLM, RemoteOptions
from .retry import AttemptError, RetryPolicy, parse_duration
from .schema import check_schema
from .sdk import require_sdk
from .sdk_errors import classify_exception

_OPTIONS = (
    *BACKEND_OPTIONS,
    "thinking_budget",
    "headers",
    "cache",
    "small",
)


class GeminiLM(RemoteLM):
    """A Gemini model over the Gemini Developer API (``GeminiLM("gemini-2.5-flash", api_key=...)``)."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        name: str | None = None,
        base_url: str | None = None,
        default_max_tokens: int = 16_384,
        thinking_budget: int | None = None,
        headers: dict[str, str] | None = None,
        **common: Unpack[RemoteOptions],
    ) -> None:
        super().__init__(
            model,
            name=name or f"gemini/{model}",
            default_max_tokens=default_max_tokens,
            **common,
        )
        self.base_url = base_url
        self.thinking_budget = thinking_budget
        self._headers = dict(headers or {})
        self._api_key = api_key

    async def _send(self, client: Any, request: tuple[list[Any], Any]) -> Any:
        contents, config = request
        genai_client, _http = client
        return await genai_client.aio.models.generate_content(model=self.model, contents=contents, config=config)

    def classify(self, exc: BaseException) -> AttemptError | None:
        return _classify(exc)

    async def _close_client(self, client: Any) -> None:
        genai_client, http = client
        await genai_client.aio.aclose()
        await http.aclose()  # google-genai leaves a client it was given to its owner

    # -- request/response ----------------------------------------------------------------------------
    def build_request(self, messages: Sequence[Message], **opts: Any) -> tuple[list[Any], Any]:
        """``(contents, config)`` for ``generate_content``."""
        types = require_sdk("google.genai.types", "gemini", "gemini")
        system_text = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
        contents: list[Any] = []
        for m in messages:
            if m.role == "system":
                continue
            role = "model" if m.role == "assistant" else "user"
            if contents and contents[-1].role == role:
                contents[-1].parts.append(types.Part(text=m.content))
            else:
                contents.append(types.Content(role=role, parts=[types.Part(text=m.content)]))
        config: dict[str, Any] = {"max_output_tokens": int(opts.get("max_tokens") or self.default_max_tokens)}
        if system_text:
            config["system_instruction"] = system_text
        if opts.get("temperature") is not None:
            config["temperature"] = float(opts["temperature"])
        stop = opts.get("stop")
        if stop:
            config["stop_sequences"] = [stop] if isinstance(stop, str) else [str(s) for s in stop]
        if opts.get("seed") is not None:
            config["seed"] = int(opts["seed"])
        if self.thinking_budget is not None:
            config["thinking_config"] = types.ThinkingConfig(thinking_budget=int(self.thinking_budget))
        schema = check_schema(opts.get("schema"))
        if schema is not None:
            config["response_mime_type"] = "application/json"
            config["response_json_schema"] = schema
        return contents, types.GenerateContentConfig(**config)

    def _parse(self, response: Any, opts: dict[str, Any]) -> Completion:
        candidates = getattr(response, "candidates", None) or []
        _check_blocked(response, candidates)
        meta = getattr(response, "usage_metadata", None)
        if meta is None and not candidates:
            raise AttemptError("malformed", f"not a generateContent response: {str(response)[:200]!r}", True)
        candidate = candidates[0] if candidates else None
        text = _text_of(candidate)
        finish_name = _finish_name(candidate)
        usage, thoughts = self._usage(meta)
        if not text.strip():
            raise AttemptError(
                "empty", f"the completion has no text (finish_reason={finish_name!r})", True, billed=usage
            )
        return self._completion(
            text,
            usage,
            thoughts,
            getattr(response, "model_version", None),
            finish_name,
            getattr(response, "response_id", None),
        )

    def _usage(self, meta: Any) -> tuple[Usage, int]:
        thoughts = int(getattr(meta, "thoughts_token_count", 0) or 0)
        usage = Usage(
            calls=1,
            input_tokens=int(getattr(meta, "prompt_token_count", 0) or 0),
            output_tokens=int(getattr(meta, "candidates_token_count", 0) or 0) + thoughts,
            cached_input_tokens=int(getattr(meta, "cached_content_token_count", 0) or 0),
        )
        usage.cost_usd = self.cost(usage)
        return usage, thoughts

    def _completion(
        self, text: str, usage: Usage, thoughts: int, model: str | None, finish: str | None, response_id: str | None
    ) -> Completion:
        extra: dict[str, Any] = {}
        if thoughts:
            extra["reasoning_tokens"] = thoughts
        if response_id:
            extra["response_id"] = response_id
        return Completion(text=text, usage=usage, model=model or self.model, finish_reason=finish, extra=extra)

    async def _stream_events(
        self, client: Any, request: tuple[list[Any], Any], opts: dict[str, Any]
    ) -> AsyncGenerator[str | Completion, None]:
        contents, config = request
        genai_client, _http = client
        chunks = await genai_client.aio.models.generate_content_stream(
            model=self.model, contents=contents, config=config
        )
        parts: list[str] = []
        meta: Any = None
        finish: str | None = None
        model: str | None = None
        response_id: str | None = None
        # google-genai's stream is a chain of async generators; closing the outer one leaves the HTTP
        # response to the garbage collector (seconds later, with the server still generating). The
        # response is noted as our HTTP client opens it (the request goes out on the first chunk) and
        # closed here.
        opened: list[Any] = []
        try:
            token = _OPENED.set(opened)
            try:
                first = await anext(aiter(chunks), None)
            finally:
                _OPENED.reset(token)
            async with contextlib.aclosing(_prepend(first, chunks)) as items:
                async for chunk in items:
                    candidates = getattr(chunk, "candidates", None) or []
                    _check_blocked(chunk, candidates)
                    meta = getattr(chunk, "usage_metadata", None) or meta
                    model = getattr(chunk, "model_version", None) or model
                    response_id = getattr(chunk, "response_id", None) or response_id
                    if not candidates:
                        continue
                    finish = _finish_name(candidates[0]) or finish
                    piece = _text_of(candidates[0])
                    if piece:
                        parts.append(piece)
                        yield piece
        finally:
            await chunks.aclose()
            for response in opened:
                await response.aclose()
        if finish is None:
            raise AttemptError("connection", "the stream ended before a chunk with a finishReason", True)
        usage, thoughts = self._usage(meta)
        text = "".join(parts)
        if not text.strip():
            raise AttemptError("empty", f"the completion has no text (finish_reason={finish!r})", True, billed=usage)
        yield self._completion(text, usage, thoughts, model, finish, response_id)

    def _make_client(self) -> tuple[Any, Any]:
        genai = require_sdk("google.genai", "gemini", "gemini")
        types = require_sdk("google.genai.types", "gemini", "gemini")
        http = _timeout_client(self.policy)
        http_options: dict[str, Any] = {
            "httpx_async_client": http,
            "retry_options": types.HttpRetryOptions(attempts=1),  # retries live in unbounded.models.retry
        }
        if self.base_url:
            http_options["base_url"] = self.base_url
        if self._headers:
            http_options["headers"] = self._headers
        client = genai.Client(api_key=self._api_key, vertexai=False, http_options=types.HttpOptions(**http_options))
        return client, http


#: The HTTP responses a Gemini stream has opened (set around its first chunk; see ``_stream_events``).
_OPENED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("unbounded_gemini_opened", default=None)


async def _note_response(response: Any) -> None:
    """httpx response hook: hand the response to the stream that is opening it, if any."""
    opened = _OPENED.get()
    if opened is not None:
        opened.append(response)


async def _prepend(first: Any, rest: Any) -> AsyncGenerator[Any, None]:
    if first is None:
        return
    yield first
    async for item in rest:
        yield item


def _check_blocked(response: Any, candidates: list[Any]) -> None:
    feedback = getattr(response, "prompt_feedback", None)
    if not candidates and getattr(feedback, "block_reason", None):
        raise AttemptError(
            "bad_request",
            f"the prompt was blocked ({feedback.block_reason}); rephrase it or change safety settings",
            False,
        )


def _text_of(candidate: Any) -> str:
    """The answer text of a candidate (thought parts left out)."""
    parts = getattr(getattr(candidate, "content", None), "parts", None) or []
    return "".join(p.text for p in parts if getattr(p, "text", None) and not getattr(p, "thought", False))


def _finish_name(candidate: Any) -> str | None:
    finish = getattr(candidate, "finish_reason", None)
    return getattr(finish, "name", None) or (str(finish) if finish is not None else None)


def _timeout_client(policy: RetryPolicy) -> Any:
    """An ``httpx.AsyncClient`` that keeps its own connect/read timeouts on every request."""
    import httpx

    class _TimeoutClient(httpx.AsyncClient):
        # google-genai passes timeout=None (meaning "no timeout" to httpx) on each request when
        # no overall timeout is configured; ignore it so the client's timeouts apply.
        def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
            kwargs.pop("timeout", None)
            return super().build_request(*args, **kwargs)

    return _TimeoutClient(
        timeout=httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout),
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        event_hooks={"response": [_note_response]},
    )


def _classify(exc: BaseException) -> AttemptError | None:
    err = classify_exception(exc)
    if err is not None and err.retry_after is None and err.kind in ("rate_limit", "server"):
        err.retry_after = _retry_info_delay(getattr(exc, "details", None))
    return err


def _retry_info_delay(details: Any) -> float | None:
    """``retryDelay`` from a ``google.rpc.RetryInfo`` entry in an error body, in seconds."""
    error = details.get("error") if isinstance(details, dict) else None
    entries = error.get("details") if isinstance(error, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and str(entry.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return parse_duration(entry.get("retryDelay"))
    return None


def create(rest: str, options: dict[str, Any]) -> LMBase:
    """``gemini/<model>``: key from ``api_key=``, GEMINI_API_KEY or GOOGLE_API_KEY."""
    if not rest:
        raise ConfigError("gemini: the spec needs a model name, e.g. 'gemini/gemini-2.5-flash'")
    require_sdk("google.genai", "gemini", "gemini")
    opts = dict(options)
    key = api_key_from(opts, ["GEMINI_API_KEY", "GOOGLE_API_KEY"], "gemini")
    policy = RetryPolicy.from_options(opts)
    user_price = opts.pop("price", None)
    cache = opts.pop("cache", None)
    model = rest.removeprefix("models/")
    lm = GeminiLM(
        model,
        api_key=key,
        name=f"gemini/{rest}",
        base_url=opts.pop("base_url", None) or os.environ.get("GEMINI_BASE_URL") or None,
        policy=policy,
        max_concurrency=pop_max_concurrency(opts),
        context_window=opts.pop("context_window", None) or lookup_context_window(model),
        default_max_tokens=int(opts.pop("default_max_tokens", None) or 16_384),
        price=parse_price(user_price) if user_price is not None else lookup_price(model, backend="gemini"),
        thinking_budget=opts.pop("thinking_budget", None),
        headers=opts.pop("headers", None),
        small=opts.pop("small", None),
    )
    reject_unknown(opts, "gemini", _OPTIONS)
    return maybe_cached(lm, cache)
