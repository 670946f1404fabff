"""OpenAI Chat Completions, and every server that speaks it (vLLM, Ollama, llama.cpp, LM Studio,
OpenRouter, Together…), on the official ``openai`` SDK.

Spec strings (each factory gets what follows the prefix)::

    openai/gpt-5-mini                        api.openai.com, OPENAI_API_KEY
    openai-compatible/<model>@<base_url>     any server; or base_url=... as an option
    ollama/<model>      http://localhost:11434/v1   (OLLAMA_BASE_URL, or OLLAMA_HOST)
    vllm/<model>        http://localhost:8000/v1    (VLLM_BASE_URL)
    llamacpp/<model>    http://localhost:8080/v1    (LLAMACPP_BASE_URL)
    lmstudio/<model>    http://localhost:1234/v1    (LMSTUDIO_BASE_URL)
    openrouter/<vendor>/<model>  https://openrouter.ai/api/v1  (OPENROUTER_API_KEY)
    together/<org>/<model>       https://api.together.xyz/v1   (TOGETHER_API_KEY)

OpenAI's reasoning models (o-series, gpt-5 except the ``-chat`` variants) reject ``max_tokens``,
``temperature`` and ``stop``: for them the output cap is sent as ``max_completion_tokens``,
temperature is left out, and stop sequences are applied to the returned text instead. Against
api.openai.com ``max_completion_tokens`` is used for every model (``max_tokens`` is deprecated
there); other servers get the widely understood ``max_tokens``.

A generic ``openai-compatible`` server never receives OPENAI_API_KEY: it gets ``api_key=`` or
OPENAI_COMPATIBLE_API_KEY, else a dummy key, so a key is not sent to a server it was not meant for.

Streaming (``astream``) sends ``stream=True`` with ``stream_options={"include_usage": True}``, so
the last chunk carries the exact usage; a server that ignores the option leaves usage unknown, as
for a non-streamed reply without it. With client-side stop sequences the stream is still read to
its end, since only the end carries the usage. The ``schema`` option becomes
``response_format={"type": "json_schema", ...}``, ``strict`` where the schema fits strict mode
(see ``schema.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Unpack
from urllib.parse import urlparse

from ..errors import ConfigError
from .base import Completion, LMBase, Message, Usage
from .cache import maybe_cached
from .options import BACKEND_OPTIONS, api_key_from, pop_max_concurrency, reject_unknown
from .pricing import lookup_context_window, lookup_price, parse_price
from .remote import RemoteLM, RemoteOptions
from .retry import AttemptError, RetryPolicy, classify_status
from .schema import check_schema, is_wrapped, openai_response_format
from .sdk import http_client, require_sdk
from .sdk_errors import classify_exception
from .streaming import ReplyText

OPENAI_BASE_URL = "https://api.openai.com/v1"

# backend prefix -> (env var overriding the base URL, default base URL)
_LOCAL_SERVERS: dict[str, tuple[str, str]] = {
    "ollama": ("OLLAMA_BASE_URL", "http://localhost:11434/v1"),
    "vllm": ("VLLM_BASE_URL", "http://localhost:8000/v1"),
    "llamacpp": ("LLAMACPP_BASE_URL", "http://localhost:8080/v1"),
    "lmstudio": ("LMSTUDIO_BASE_URL", "http://localhost:1234/v1"),
}
# Optional keys a local server may be started with (vllm serve --api-key, llama-server --api-key).
_LOCAL_KEY_VARS: dict[str, str] = {
    "ollama": "OLLAMA_API_KEY",
    "vllm": "VLLM_API_KEY",
    "llamacpp": "LLAMACPP_API_KEY",
    "lmstudio": "LMSTUDIO_API_KEY",
}
_HOSTED: dict[str, tuple[str, str, str]] = {
    "openrouter": ("OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "together": ("TOGETHER_BASE_URL", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
}
_DUMMY_KEY = "sk-no-key-required"

# Options every factory in this module understands.
_OPTIONS = (
    *BACKEND_OPTIONS,
    "reasoning",
    "reasoning_effort",
    "extra_body",
    "headers",
    "cache",
    "small",
)

_REASONING = re.compile(r"^(o\d|gpt-5)")


def is_reasoning_model(model: str) -> bool:
    """OpenAI models with the reasoning-API parameter rules (o1, o3, o4-mini, gpt-5…)."""
    bare = model.lower().rsplit("/", 1)[-1]
    return bool(_REASONING.match(bare)) and "-chat" not in bare


class OpenAIChatLM(RemoteLM):
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Construct it through a factory (``resolve_model("openai/gpt-5-mini")``) or directly::

        OpenAIChatLM("gpt-5-mini", name="openai/gpt-5-mini", base_url=..., api_key=...,
                     policy=RetryPolicy(read_timeout=120), price=(0.25, 2.0, 0.025))
    """

    def __init__(
        self,
        model: str,
        *,
        name: str | None = None,
        base_url: str = OPENAI_BASE_URL,
        api_key: str = _DUMMY_KEY,
        official: bool | None = None,
        reasoning: bool | None = None,
        reasoning_effort: str | None = None,
        default_max_tokens: int | None = None,
        extra_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **common: Unpack[RemoteOptions],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.official = official if official is not None else _is_openai_host(self.base_url)
        self.reasoning = reasoning if reasoning is not None else (self.official and is_reasoning_model(model))
        self.reasoning_effort = reasoning_effort
        super().__init__(
            model,
            name=name or f"openai-compatible/{model}",
            default_max_tokens=default_max_tokens or (16_384 if self.reasoning else 4_096),
            **common,
        )
        self._extra_body = dict(extra_body or {})
        self._headers = dict(headers or {})
        self._api_key = api_key

    async def _send(self, client: Any, request: dict[str, Any]) -> Any:
        return await client.chat.completions.create(**request)

    def classify(self, exc: BaseException) -> AttemptError | None:
        """SDK errors by status; an ``error`` object inside a streamed 200 response by its type."""
        body = getattr(exc, "body", None)
        if getattr(exc, "status_code", None) is None and isinstance(body, dict) and type(exc).__name__ == "APIError":
            etype = str(body.get("type") or body.get("code") or "")
            status = 429 if "rate_limit" in etype or etype in ("requests", "tokens") else 500
            if "invalid_request" in etype:
                status = 400
            message = str(body.get("message") or exc)
            return classify_status(status, f"error in the stream ({etype or 'unknown'}): {message}", code=etype)
        return classify_exception(exc)

    # -- request/response ----------------------------------------------------------------------------
    def build_request(self, messages: Sequence[Message], **opts: Any) -> dict[str, Any]:
        """The keyword arguments for ``chat.completions.create`` (public for tests and debugging)."""
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_dict() for m in messages],
        }
        max_tokens = opts.get("max_tokens") or self.default_max_tokens
        if self.official or self.reasoning:
            request["max_completion_tokens"] = int(max_tokens)
        else:
            request["max_tokens"] = int(max_tokens)
        temperature = opts.get("temperature")
        if temperature is not None and not self.reasoning:
            request["temperature"] = float(temperature)
        stop = _stops(opts.get("stop"))
        if stop and not self.reasoning:
            request["stop"] = stop
        if opts.get("seed") is not None:
            request["seed"] = int(opts["seed"])
        if self.reasoning and self.reasoning_effort:
            request["reasoning_effort"] = self.reasoning_effort
        schema = check_schema(opts.get("schema"))
        if schema is not None:
            request["response_format"] = openai_response_format(schema)
        if self._extra_body:
            request["extra_body"] = dict(self._extra_body)
        return request

    def _client_stops(self, opts: dict[str, Any]) -> list[str]:
        """Stop sequences applied here: reasoning models reject them in the request."""
        return _stops(opts.get("stop")) if self.reasoning else []

    def _parse(self, response: Any, opts: dict[str, Any]) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices:
            raise AttemptError("malformed", f"response has no choices: {str(response)[:200]!r}", True)
        choice = choices[0]
        message = getattr(choice, "message", None)
        if message is None:
            raise AttemptError("malformed", "response choice has no message", True)
        text = message.content or ""
        refusal = getattr(message, "refusal", None)
        if not text and refusal:
            text = str(refusal)
        finish = getattr(choice, "finish_reason", None)
        usage, details = self._usage(getattr(response, "usage", None))
        if not text.strip():
            raise AttemptError("empty", _empty_message(finish, details), True, billed=usage)
        text = ReplyText.whole(text, self._client_stops(opts), unwrap=is_wrapped(opts.get("schema")))
        return self._completion(
            text,
            usage,
            details,
            getattr(response, "model", None),
            finish,
            getattr(response, "_request_id", None),
            bool(refusal),
        )

    def _completion(
        self,
        text: str,
        usage: Usage,
        details: dict[str, Any],
        model: str | None,
        finish: str | None,
        request_id: str | None,
        refusal: bool,
    ) -> Completion:
        extra: dict[str, Any] = {k: v for k, v in details.items() if v}
        if request_id:
            extra["request_id"] = request_id
        if refusal:
            extra["refusal"] = True
        return Completion(text=text, usage=usage, model=model or self.model, finish_reason=finish, extra=extra)

    async def _stream_events(
        self, client: Any, request: dict[str, Any], opts: dict[str, Any]
    ) -> AsyncGenerator[str | Completion, None]:
        stream = await client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
        reply = ReplyText(self._client_stops(opts), unwrap=is_wrapped(opts.get("schema")))
        finish: str | None = None
        raw_usage: Any = None
        model: str | None = None
        refusal = False
        seen_text = False  # the reply had text before any stop sequence cut it (else it is empty)
        try:
            async for chunk in stream:
                model = getattr(chunk, "model", None) or model
                if getattr(chunk, "usage", None) is not None:
                    raw_usage = chunk.usage
                for choice in getattr(chunk, "choices", None) or ():
                    if getattr(choice, "index", 0) != 0:
                        continue
                    delta = getattr(choice, "delta", None)
                    piece = getattr(delta, "content", None) or ""
                    refused = getattr(delta, "refusal", None)
                    if refused:
                        refusal = True
                        piece += str(refused)
                    finish = getattr(choice, "finish_reason", None) or finish
                    seen_text = seen_text or bool(piece.strip())
                    out = reply.feed(piece)
                    if out:
                        yield out
        finally:
            await stream.close()
        if finish is None:
            raise AttemptError("connection", "the stream ended before the model finished (no finish_reason)", True)
        usage, details = self._usage(raw_usage)
        if not seen_text:
            raise AttemptError("empty", _empty_message(finish, details), True, billed=usage)
        tail = reply.finish()
        if tail:
            yield tail
        headers = getattr(getattr(stream, "response", None), "headers", None)
        rid = headers.get("x-request-id") if headers is not None else None
        yield self._completion(reply.text, usage, details, model, finish, rid, refusal)

    def _usage(self, raw: Any) -> tuple[Usage, dict[str, Any]]:
        if raw is None:
            # Some compatible servers omit usage; tokens are unknown, so cost is unknown unless free.
            usage = Usage(calls=1, cost_usd=0.0 if self._price == (0.0, 0.0, 0.0) else None)
            return usage, {"usage_missing": True}
        prompt_details = getattr(raw, "prompt_tokens_details", None)
        completion_details = getattr(raw, "completion_tokens_details", None)
        usage = Usage(
            calls=1,
            input_tokens=int(getattr(raw, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(raw, "completion_tokens", 0) or 0),
            cached_input_tokens=int(getattr(prompt_details, "cached_tokens", 0) or 0),
        )
        usage.cost_usd = self.cost(usage)
        return usage, {"reasoning_tokens": int(getattr(completion_details, "reasoning_tokens", 0) or 0)}

    def _make_client(self) -> Any:
        openai = require_sdk("openai", "openai", "OpenAI-compatible")
        return openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            max_retries=0,  # retries live in unbounded.models.retry
            timeout=openai.Timeout(self.policy.read_timeout, connect=self.policy.connect_timeout),
            default_headers=self._headers or None,
            http_client=http_client(openai),
        )


def _is_openai_host(base_url: str) -> bool:
    host = urlparse(base_url).hostname or ""
    return host == "api.openai.com" or host.endswith(".openai.com")


def _is_loopback(base_url: str) -> bool:
    host = (urlparse(base_url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def _stops(stop: Any) -> list[str]:
    if not stop:
        return []
    return [stop] if isinstance(stop, str) else [str(s) for s in stop]


def _empty_message(finish: str | None, details: dict[str, Any]) -> str:
    msg = "the completion has no text"
    if finish:
        msg += f" (finish_reason={finish!r}"
        if details.get("reasoning_tokens"):
            msg += f", {details['reasoning_tokens']} reasoning tokens"
        msg += ")"
    return msg


# -- factories (called by the registry as factory(rest_of_spec, options)) ---------------------------


def _build(
    model: str,
    options: dict[str, Any],
    *,
    name: str,
    backend: str,
    base_url: str,
    api_key: str,
    price: tuple[float, float, float] | None,
    official: bool | None = None,
) -> LMBase:
    if not model:
        raise ConfigError(f"{backend}: the spec needs a model name, e.g. '{backend}/<model>'")
    opts = dict(options)
    policy = RetryPolicy.from_options(opts)
    max_concurrency = pop_max_concurrency(opts)
    user_price = opts.pop("price", None)
    cache = opts.pop("cache", None)
    lm = OpenAIChatLM(
        model,
        name=name,
        base_url=str(opts.pop("base_url", None) or base_url),
        api_key=api_key,
        official=official,
        reasoning=opts.pop("reasoning", None),
        reasoning_effort=opts.pop("reasoning_effort", None),
        policy=policy,
        max_concurrency=max_concurrency,
        context_window=opts.pop("context_window", None) or lookup_context_window(model),
        default_max_tokens=opts.pop("default_max_tokens", None),
        price=parse_price(user_price) if user_price is not None else price,
        extra_body=opts.pop("extra_body", None),
        headers=opts.pop("headers", None),
        small=opts.pop("small", None),
    )
    reject_unknown(opts, backend, _OPTIONS)
    return maybe_cached(lm, cache)


def _check_sdk(backend: str) -> None:
    require_sdk("openai", "openai", backend)


def create_openai(rest: str, options: dict[str, Any]) -> LMBase:
    """``openai/<model>`` on api.openai.com (or ``base_url``/OPENAI_BASE_URL, e.g. a proxy or Azure)."""
    _check_sdk("openai")
    opts = dict(options)
    key = api_key_from(opts, ["OPENAI_API_KEY"], "openai")
    base_url = str(opts.pop("base_url", None) or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL)
    return _build(
        rest,
        opts,
        name=f"openai/{rest}",
        backend="openai",
        base_url=base_url,
        api_key=key,
        price=lookup_price(rest, backend="openai"),
        official=True,  # a proxy or Azure in front of OpenAI has the same parameter rules
    )


def create_compatible(rest: str, options: dict[str, Any]) -> LMBase:
    """``openai-compatible/<model>@<base_url>``, or ``openai-compatible/<model>`` with ``base_url=``."""
    _check_sdk("openai-compatible")
    opts = dict(options)
    # split at the "@" that starts a URL, so model ids with "@" (and URLs with credentials) survive
    m = re.match(r"^(.+?)@(https?://.+)$", rest)
    model, url_in_spec = (m.group(1), m.group(2)) if m else (rest, "")
    base_url = str(opts.pop("base_url", None) or url_in_spec or os.environ.get("OPENAI_COMPATIBLE_BASE_URL", ""))
    if not base_url:
        raise ConfigError(
            "openai-compatible needs a base URL: use 'openai-compatible/<model>@http://host:port/v1', "
            "pass base_url=..., or set OPENAI_COMPATIBLE_BASE_URL"
        )
    key = opts.pop("api_key", None) or os.environ.get("OPENAI_COMPATIBLE_API_KEY") or _DUMMY_KEY
    loopback = _is_loopback(base_url)
    return _build(
        model,
        opts,
        name=f"openai-compatible/{model}@{base_url}",
        backend="openai-compatible",
        base_url=base_url,
        api_key=str(key),
        price=(0.0, 0.0, 0.0) if loopback else lookup_price(model, backend="openai-compatible", use_table=False),
    )


def _create_local(prefix: str, rest: str, options: dict[str, Any]) -> LMBase:
    _check_sdk(prefix)
    opts = dict(options)
    env_var, default_url = _LOCAL_SERVERS[prefix]
    base_url = opts.pop("base_url", None) or os.environ.get(env_var) or _ollama_host(prefix) or default_url
    key = opts.pop("api_key", None) or os.environ.get(_LOCAL_KEY_VARS[prefix]) or _DUMMY_KEY
    return _build(
        rest,
        opts,
        name=f"{prefix}/{rest}",
        backend=prefix,
        base_url=str(base_url),
        api_key=str(key),
        price=(0.0, 0.0, 0.0),
    )


def _ollama_host(prefix: str) -> str | None:
    """Honour Ollama's own OLLAMA_HOST (``host:port`` or a URL, without ``/v1``)."""
    if prefix != "ollama":
        return None
    host = os.environ.get("OLLAMA_HOST", "").strip()
    if not host:
        return None
    if "://" not in host:
        host = f"http://{host}"
    return host.rstrip("/") + "/v1"


def _create_hosted(prefix: str, rest: str, options: dict[str, Any]) -> LMBase:
    _check_sdk(prefix)
    opts = dict(options)
    env_url, default_url, key_var = _HOSTED[prefix]
    key = api_key_from(opts, [key_var], prefix)
    base_url = opts.pop("base_url", None) or os.environ.get(env_url) or default_url
    # OpenRouter passes providers' list prices through, so the table applies to its
    # "vendor/model" ids; Together hosts open models the table does not cover.
    price = lookup_price(rest, backend=prefix, use_table=prefix == "openrouter")
    return _build(
        rest,
        opts,
        name=f"{prefix}/{rest}",
        backend=prefix,
        base_url=str(base_url),
        api_key=key,
        price=price,
    )


def create_ollama(rest: str, options: dict[str, Any]) -> LMBase:
    return _create_local("ollama", rest, options)


def create_vllm(rest: str, options: dict[str, Any]) -> LMBase:
    return _create_local("vllm", rest, options)


def create_llamacpp(rest: str, options: dict[str, Any]) -> LMBase:
    return _create_local("llamacpp", rest, options)


def create_lmstudio(rest: str, options: dict[str, Any]) -> LMBase:
    return _create_local("lmstudio", rest, options)


def create_openrouter(rest: str, options: dict[str, Any]) -> LMBase:
    return _create_hosted("openrouter", rest, options)


def create_together(rest: str, options: dict[str, Any]) -> LMBase:
    return _create_hosted("together", rest, options)
