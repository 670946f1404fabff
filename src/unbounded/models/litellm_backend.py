"""The long tail of providers through LiteLLM (optional): ``litellm/<litellm model string>``.

For example ``litellm/bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0``,
``litellm/mistral/mistral-large-latest`` or ``litellm/groq/llama-3.3-70b-versatile``: everything
after ``litellm/`` is passed to ``litellm.acompletion`` unchanged. Install with
``pip install 'unbounded[litellm]'``.

LiteLLM's own retries are off (``num_retries=0``, ``max_retries=0``); the shared policy in
``retry.py`` retries instead. LiteLLM has a single overall timeout, which is set to the policy's
read timeout. Options a provider does not support are dropped (``drop_params=True``), as the
model protocol asks. Prices come from unbounded's table, else LiteLLM's own price map, else are
unknown. A missing key is detected up front with ``litellm.validate_environment``.

Streaming sends ``stream=True`` with ``stream_options={"include_usage": True}`` (usage from the
chunk that carries it); the ``schema`` option becomes the OpenAI-style ``response_format``, which
LiteLLM translates for each provider (or drops where a provider has no such mode).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Unpack

from ..errors import ConfigError, MissingAPIKeyError, MissingExtraError
from .base import Completion, LMBase, Message, Usage
from .cache import maybe_cached
from .options import BACKEND_OPTIONS, pop_max_concurrency, reject_unknown
from .pricing import lookup_context_window, lookup_price, parse_price
from .remote import RemoteLM, RemoteOptions
from .retry import AttemptError, RetryPolicy
from .schema import check_schema, is_wrapped, openai_response_format
from .sdk_errors import classify_exception
from .streaming import ReplyText

_OPTIONS = (
    *BACKEND_OPTIONS,
    "extra_body",
    "cache",
    "small",
)


def _import_litellm() -> Any:
    # LiteLLM downloads its price map from the network at import unless told not to; the copy
    # bundled with the package is enough and keeps imports fast and offline.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError as exc:
        raise MissingExtraError(
            "litellm/... models need the optional 'litellm' package: pip install 'unbounded[litellm]'"
        ) from exc
    return litellm


class LiteLLMLM(RemoteLM):
    """Any model LiteLLM can reach, e.g. ``LiteLLMLM("mistral/mistral-large-latest")``."""

    def __init__(
        self,
        model: str,
        *,
        name: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        default_max_tokens: int = 4096,
        extra_body: dict[str, Any] | None = None,
        **common: Unpack[RemoteOptions],
    ) -> None:
        super().__init__(
            model,
            name=name or f"litellm/{model}",
            default_max_tokens=default_max_tokens,
            **common,
        )
        self._api_key = api_key
        self._base_url = base_url
        self._extra_body = dict(extra_body or {})
        self._litellm = _import_litellm()

    async def _send(self, client: Any, request: dict[str, Any]) -> Any:
        return await self._litellm.acompletion(**request)

    def classify(self, exc: BaseException) -> AttemptError | None:
        return _classify(exc)

    def build_request(self, messages: Sequence[Message], **opts: Any) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_dict() for m in messages],
            "max_tokens": int(opts.get("max_tokens") or self.default_max_tokens),
            "timeout": self.policy.read_timeout,
            "num_retries": 0,
            "max_retries": 0,
            "drop_params": True,
        }
        for key in ("temperature", "seed"):
            if opts.get(key) is not None:
                request[key] = opts[key]
        stop = opts.get("stop")
        if stop:
            request["stop"] = [stop] if isinstance(stop, str) else [str(s) for s in stop]
        if self._api_key:
            request["api_key"] = self._api_key
        if self._base_url:
            request["api_base"] = self._base_url
        schema = check_schema(opts.get("schema"))
        if schema is not None:
            request["response_format"] = openai_response_format(schema)
        request.update(self._extra_body)
        return request

    def _parse(self, response: Any, opts: dict[str, Any]) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices:
            raise AttemptError("malformed", f"response has no choices: {str(response)[:200]!r}", True)
        choice = choices[0]
        text = getattr(getattr(choice, "message", None), "content", None) or ""
        finish = getattr(choice, "finish_reason", None)
        usage = self._usage(getattr(response, "usage", None))
        if not text.strip():
            raise AttemptError("empty", f"the completion has no text (finish_reason={finish!r})", True, billed=usage)
        return Completion(
            text=ReplyText.whole(text, unwrap=is_wrapped(opts.get("schema"))),
            usage=usage,
            model=getattr(response, "model", None) or self.model,
            finish_reason=finish,
        )

    def _usage(self, raw: Any) -> Usage:
        details = getattr(raw, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", None) or getattr(raw, "cache_read_input_tokens", 0)
        usage = Usage(
            calls=1,
            input_tokens=int(getattr(raw, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(raw, "completion_tokens", 0) or 0),
            cached_input_tokens=int(cached or 0),
        )
        usage.cost_usd = self.cost(usage) if raw is not None else None
        return usage

    async def _stream_events(
        self, client: Any, request: dict[str, Any], opts: dict[str, Any]
    ) -> AsyncGenerator[str | Completion, None]:
        stream = await self._litellm.acompletion(**request, stream=True, stream_options={"include_usage": True})
        reply = ReplyText(unwrap=is_wrapped(opts.get("schema")))
        finish: str | None = None
        raw_usage: Any = None
        model: str | None = None
        try:
            async for chunk in stream:
                model = getattr(chunk, "model", None) or model
                if getattr(chunk, "usage", None) is not None:
                    raw_usage = chunk.usage
                for choice in getattr(chunk, "choices", None) or ():
                    if getattr(choice, "index", 0) != 0:
                        continue
                    finish = getattr(choice, "finish_reason", None) or finish
                    out = reply.feed(getattr(getattr(choice, "delta", None), "content", None) or "")
                    if out:
                        yield out
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()
        if finish is None:
            raise AttemptError("connection", "the stream ended before the model finished (no finish_reason)", True)
        usage = self._usage(raw_usage)
        tail = reply.finish()
        if not reply.text.strip():
            raise AttemptError("empty", f"the completion has no text (finish_reason={finish!r})", True, billed=usage)
        if tail:
            yield tail
        yield Completion(text=reply.text, usage=usage, model=model or self.model, finish_reason=finish)


def _classify(exc: BaseException) -> AttemptError | None:
    # LiteLLM gives every exception a status_code, including 500 for a refused connection and
    # 408 for its timeout; the class name is the more precise signal.
    names = {cls.__name__ for cls in type(exc).__mro__}
    original = getattr(exc, "original_exception", None)
    if "MidStreamFallbackError" in names and isinstance(original, BaseException) and original is not exc:
        return _classify(original)  # a broken stream, wrapped: what broke it says more than the wrapper
    if "Timeout" in names or "APITimeoutError" in names:
        return AttemptError("timeout", str(exc), True)
    if "APIConnectionError" in names:
        return AttemptError("connection", str(exc), True)
    if "ContextWindowExceededError" in names:
        return AttemptError("context_length", str(exc), False, getattr(exc, "status_code", None))
    return classify_exception(exc)


def _litellm_price(litellm: Any, model: str) -> tuple[float, float, float] | None:
    try:
        info = litellm.get_model_info(model)
    except Exception:  # LiteLLM raises a bare Exception for unmapped models
        return None
    pin = info.get("input_cost_per_token")
    pout = info.get("output_cost_per_token")
    if pin is None or pout is None:
        return None
    pcached = info.get("cache_read_input_token_cost")
    pcached = pin if pcached is None else pcached
    return (float(pin) * 1e6, float(pout) * 1e6, float(pcached) * 1e6)


def _litellm_window(litellm: Any, model: str) -> int | None:
    try:
        info = litellm.get_model_info(model)
    except Exception:
        return None
    window = info.get("max_input_tokens")
    return int(window) if window else None


def create(rest: str, options: dict[str, Any]) -> LMBase:
    """``litellm/<model>``; keys come from the provider's usual variables, or ``api_key=``."""
    if not rest:
        raise ConfigError("litellm: the spec needs a LiteLLM model string, e.g. 'litellm/mistral/mistral-large-latest'")
    litellm = _import_litellm()
    opts = dict(options)
    api_key = opts.pop("api_key", None)
    base_url = opts.pop("base_url", None)
    if not api_key:
        try:
            env = litellm.validate_environment(model=rest, api_base=base_url)
        except Exception:
            env = {}
        missing = [k for k in env.get("missing_keys", []) if k.endswith(("_KEY", "_TOKEN"))]
        if missing:
            raise MissingAPIKeyError(
                f"litellm/{rest} needs an API key: set {' or '.join(missing)} in the environment "
                "or pass api_key=... when creating the model."
            )
    policy = RetryPolicy.from_options(opts)
    user_price = opts.pop("price", None)
    cache = opts.pop("cache", None)
    if user_price is not None:
        price = parse_price(user_price)
    else:
        price = lookup_price(rest, backend="litellm") or _litellm_price(litellm, rest)
    lm = LiteLLMLM(
        rest,
        api_key=api_key,
        base_url=base_url,
        policy=policy,
        max_concurrency=pop_max_concurrency(opts),
        context_window=opts.pop("context_window", None)
        or lookup_context_window(rest)
        or _litellm_window(litellm, rest),
        default_max_tokens=int(opts.pop("default_max_tokens", None) or 4096),
        price=price,
        extra_body=opts.pop("extra_body", None),
        small=opts.pop("small", None),
    )
    reject_unknown(opts, "litellm", _OPTIONS)
    return maybe_cached(lm, cache)
