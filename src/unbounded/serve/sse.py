"""``stream: true``: the run as OpenAI chunks over server-sent events.

The stream opens with the assistant's role, carries each run event as a chunk with an empty delta
and the event in the ``unbounded.progress`` field (plain clients see nothing), then the answer as
content, a last chunk with ``finish_reason`` and the ``unbounded`` summary, the usage chunk when
``stream_options.include_usage`` asks for it, and ``data: [DONE]``. A run that fails sends OpenAI's
error object as a chunk (SDKs raise it). A comment line every ``keepalive`` seconds keeps proxies
from closing a quiet stream.

The response watches the connection itself: when the client goes away the run is cancelled at once,
not when the next chunk fails to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.types import Receive, Scope, Send

from . import openai_format as fmt
from .runs import RunHandle


def sse(data: Any) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


class ChatStream:
    def __init__(
        self,
        handle: RunHandle,
        model: str,
        *,
        progress: bool,
        include_usage: bool,
        keepalive: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.handle = handle
        self.model = model
        self.progress = progress
        self.include_usage = include_usage
        self.keepalive = keepalive
        self.headers = headers or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
                   "x-accel-buffering": "no", **self.headers}  # fmt: skip
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})  # fmt: skip
        pump = asyncio.ensure_future(self._pump(send))
        watch = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.handle.cancel()  # a no-op when the run is over
            for task in (pump, watch):
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(pump, watch, return_exceptions=True)

    async def _pump(self, send: Send) -> None:
        handle = self.handle

        async def emit(data: Any) -> None:
            await send({"type": "http.response.body", "body": sse(data), "more_body": True})

        await emit(fmt.chunk(handle, self.model, {"role": "assistant", "content": ""}))
        while True:
            try:
                event = await handle.next_event(self.keepalive)
            except StopAsyncIteration:
                break
            if event is None:
                await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
            elif self.progress:
                await emit(fmt.chunk(handle, self.model, {}, unbounded={"progress": fmt.progress(event)}))
        if handle.cancelled:
            return
        result = handle.result
        failure = handle.failure or (fmt.failure_of(result) if result is not None else None)
        if failure is not None or result is None:
            body = failure.body() if failure is not None else {"error": {"message": "the run ended without a result",
                                                                         "type": "server_error", "param": None,
                                                                         "code": "no_result"}}  # fmt: skip
            await emit(body)
        else:
            if result.answer:
                await emit(fmt.chunk(handle, self.model, {"content": result.answer}))
            await emit(fmt.chunk(handle, self.model, {}, finish=fmt.finish_reason(result),
                                 unbounded=fmt.extension(handle, result)))  # fmt: skip
            if self.include_usage:
                await emit(fmt.usage_chunk(handle, self.model, result))
        await emit("[DONE]")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
