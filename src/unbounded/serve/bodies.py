"""Request bodies: a size limit enforced while reading (``BodyLimit``), and JSON read with clear errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

#: Bodies larger than this are parsed on a worker thread, so the event loop keeps serving.
THREAD_PARSE_BYTES = 1 << 20


class BodyLimit:
    """Refuse a body over the route's limit: at once from ``Content-Length``, else while it streams in.

    ``limit_for(path)`` gives the limit in bytes. A body cut off by the limit raises ``PayloadTooLarge``
    from ``receive``, which the route turns into a 413.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        scope["unbounded.body_limit"] = limit
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, limited, send)


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than this server's limit of {limit / (1 << 20):.0f} MiB "
        "(--max-body-mb for chat, --max-upload-mb for contexts): register a big input with POST /v1/contexts or "
        "name it with paths",
    )


def check_length(request: Request) -> None:
    length = request.headers.get("content-length")
    limit = request.scope.get("unbounded.body_limit")
    if length and limit is not None:
        try:
            size = int(length)
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if size > limit:
            raise too_large(limit)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_json(request: Request) -> Any:
    if media_type(request) != "application/json":
        raise UnsupportedMediaType(
            "send the body as JSON with the header 'Content-Type: application/json' (OpenAI clients do)"
        )
    check_length(request)
    raw = await request.body()
    return await parse_json(raw)


async def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise BadRequest("the request body is empty: send a JSON object", code="invalid_json")
    try:
        if len(raw) > THREAD_PARSE_BYTES:
            return await asyncio.to_thread(json.loads, raw)
        return json.loads(raw)
    except RecursionError:
        raise BadRequest("the JSON body is nested too deeply", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="invalid_json") from None
