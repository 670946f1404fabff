"""Sorting what an SDK raised into an :class:`~unbounded.models.retry.AttemptError`.

HTTP status errors are classified by status (``retry.classify_status``, the same rules for every
provider); timeouts, dropped connections and unparseable bodies by exception class, whichever
HTTP library raised them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from .retry import AttemptError, classify_status


def classify_transport(exc: BaseException) -> AttemptError | None:
    """Timeouts, dropped connections and unparseable bodies, whichever HTTP library raised them.

    The SDKs sit on ``httpx`` or its fork ``httpx2``; both name their exceptions alike, so they
    are recognised by class name along the MRO rather than by importing either library.
    """
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return AttemptError("timeout", _with_cause(exc, "request timed out"), True)
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"TimeoutException", "APITimeoutError", "ReadTimeout", "ConnectTimeout", "PoolTimeout"}:
        return AttemptError("timeout", _with_cause(exc, "request timed out"), True)
    if names & {"TransportError", "APIConnectionError", "NetworkError", "ProtocolError"}:
        return AttemptError("connection", _with_cause(exc, type(exc).__name__), True)
    if isinstance(exc, ConnectionError):
        return AttemptError("connection", _with_cause(exc, type(exc).__name__), True)
    if isinstance(exc, ValueError) and names & {"JSONDecodeError", "ValidationError", "UnknownApiResponseError"}:
        return AttemptError("malformed", f"invalid JSON in response: {exc}", True)
    return None


def classify_exception(exc: BaseException) -> AttemptError | None:
    """Classify an SDK exception: HTTP status errors by status, the rest as transport failures.

    Works for the OpenAI and Anthropic SDKs (``status_code``, ``response``, ``body``), google-genai
    (``code``, ``status``, ``message``) and LiteLLM (``status_code``, ``message``).
    """
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        code_attr = getattr(exc, "code", None)
        status = code_attr if isinstance(code_attr, int) else None
    if isinstance(status, int) and 400 <= status < 600:
        response = getattr(exc, "response", None)
        raw_headers = getattr(response, "headers", None)
        headers = dict(raw_headers.items()) if raw_headers is not None else {}
        request_id = getattr(exc, "request_id", None) or _header(headers, "request-id", "x-request-id")
        return classify_status(
            status,
            _exc_message(exc),
            headers=headers,
            code=_exc_code(exc),
            request_id=str(request_id) if request_id else None,
        )
    return classify_transport(exc)


def _with_cause(exc: BaseException, default: str) -> str:
    """The exception's message, and its cause's when the SDK wrapped a more telling one
    (``Connection error.`` around ``incomplete chunked read``)."""
    text = str(exc).strip() or default
    cause = exc.__cause__
    detail = str(cause).strip() if cause is not None else ""
    if detail and detail not in text:
        text = f"{text.rstrip('.')}: {detail}"
    return text


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    lower = {k.lower(): v for k, v in headers.items()}
    for n in names:
        if n in lower:
            return lower[n]
    return None


def _exc_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        msg = inner.get("message") if isinstance(inner, dict) else None
        if msg:
            return str(msg)
    msg = getattr(exc, "message", None)
    return str(msg or exc)


def _exc_code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner, dict):
            for key in ("code", "type"):
                if isinstance(inner.get(key), str):
                    return inner[key]
    status = getattr(exc, "status", None)
    return status if isinstance(status, str) else None
