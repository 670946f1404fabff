"""A scripted, protocol-faithful model server on loopback, for testing remote backends.

It speaks three wire protocols on one port, chosen by path:

* OpenAI Chat Completions: ``POST /v1/chat/completions``
* Anthropic Messages: ``POST /v1/messages``
* Gemini ``generateContent``: ``POST /<version>/models/<model>:generateContent``, and
  ``:streamGenerateContent?alt=sse``

Each request takes the next behaviour from a script (``ok``, ``error``, ``stall``, ``drop``,
``malformed``, ``empty``, ``cut``, ``stream_error``); when the script runs out, ``default`` answers.
Every request received is recorded with the behaviour it got, so tests can assert exact request
counts, inspect the bodies the SDKs sent and sum the usage the server really returned.

Streaming requests (OpenAI and Anthropic ``"stream": true``, Gemini's ``streamGenerateContent``)
get the protocol's server-sent events over chunked HTTP, shaped as each provider sends them: OpenAI
``chat.completion.chunk`` deltas, a finish chunk, the usage chunk when ``stream_options.include_usage``
asks for it, ``[DONE]``; Anthropic ``message_start`` … ``content_block_delta`` (``text_delta``, or
``input_json_delta`` for a forced tool) … ``message_delta`` ``message_stop``, with ``ping``; Gemini
``GenerateContentResponse`` chunks whose last one has the ``finishReason`` and the full
``usageMetadata``. The reply's text is sent in ``pieces`` (default: word by word), ``delay`` seconds
apart. ``cut`` breaks the connection after some pieces (no terminating chunk), ``stream_error``
sends the protocol's in-stream error event. The server notes how many pieces went out and whether
the client hung up early (``Received.pieces_sent``, ``Received.disconnected``).

An Anthropic request that forces a tool (``tool_choice: {"type": "tool"}``) is answered with a
``tool_use`` block whose input is the scripted text parsed as JSON.

``route(needle, ...)`` scripts the requests whose body contains ``needle`` separately from the
rest, so concurrent calls (an ``llm_batch``) get their faults by content, not by arrival order.

    with FaultServer([error(429, retry_after=0.2), ok("hi")]) as server:
        backend = ...(base_url=server.openai_url)
        ...
        assert server.count == 2
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Behaviour",
    "FaultServer",
    "Received",
    "cut",
    "drop",
    "empty",
    "error",
    "malformed",
    "ok",
    "stall",
    "stream_error",
]


@dataclass(frozen=True)
class Behaviour:
    """What the server does with one request."""

    action: str  # ok | error | stall | drop | malformed | cut | stream_error
    text: str = ""
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    message: str = ""
    code: str | None = None
    seconds: float = 0.0
    input_tokens: int = 10
    output_tokens: int = 5
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    thoughts_tokens: int = 0
    finish_reason: str | None = None
    then: Behaviour | None = None  # for stall: what to send after the pause (if the client still listens)
    pieces: tuple[str, ...] | None = None  # how a streamed reply is split (None: word by word)
    delay: float = 0.0  # seconds between streamed pieces
    after: int = 0  # cut / stream_error: pieces sent before the break

    def stream_pieces(self) -> list[str]:
        if self.pieces is not None:
            return list(self.pieces)
        return re.findall(r"\S+\s*|\s+", self.text)


def ok(
    text: str = "ok",
    *,
    input_tokens: int = 10,
    output_tokens: int = 5,
    cached_tokens: int = 0,
    cache_creation_tokens: int = 0,
    thoughts_tokens: int = 0,
    finish_reason: str | None = None,
    pieces: Sequence[str] | None = None,
    delay: float = 0.0,
) -> Behaviour:
    """A successful completion with exactly these token counts.

    ``input_tokens`` is the provider's own total prompt count where the protocol has one
    (OpenAI ``prompt_tokens``, Gemini ``promptTokenCount``), both of which include cached tokens.
    For Anthropic it is ``input_tokens``, which excludes cache reads and writes, as on the wire.
    Streamed, the text goes out in ``pieces`` (they then make the text), ``delay`` seconds apart.
    """
    return Behaviour(
        "ok",
        text="".join(pieces) if pieces is not None else text,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        cache_creation_tokens=cache_creation_tokens,
        thoughts_tokens=thoughts_tokens,
        finish_reason=finish_reason,
        pieces=tuple(pieces) if pieces is not None else None,
        delay=delay,
    )


def cut(text: str, *, after: int, pieces: Sequence[str] | None = None, delay: float = 0.0) -> Behaviour:
    """A stream that breaks: ``after`` pieces of ``text`` go out, then the connection is dropped
    without the stream's end (no final event, no terminating chunk). Not streamed: a plain drop."""
    return Behaviour(
        "cut",
        text="".join(pieces) if pieces is not None else text,
        pieces=tuple(pieces) if pieces is not None else None,
        delay=delay,
        after=after,
    )


def stream_error(
    status: int, message: str | None = None, *, after: int = 0, text: str = "", pieces: Sequence[str] | None = None
) -> Behaviour:
    """A stream that starts well (HTTP 200, ``after`` pieces of ``text``), then sends the protocol's
    error event for ``status`` (Anthropic ``event: error``, an ``error`` object in the data for
    OpenAI and Gemini) and ends. Not streamed: the plain HTTP error."""
    return Behaviour(
        "stream_error",
        text="".join(pieces) if pieces is not None else text,
        pieces=tuple(pieces) if pieces is not None else None,
        status=status,
        message=message or f"scripted error {status}",
        after=after,
    )


def empty(**kwargs: Any) -> Behaviour:
    """A well-formed completion whose text is empty."""
    return ok("", **kwargs)


def error(
    status: int,
    message: str | None = None,
    *,
    retry_after: float | str | None = None,
    retry_after_ms: float | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    retry_info: float | None = None,
) -> Behaviour:
    """An HTTP error with the protocol's error body.

    ``retry_after`` (seconds, or an HTTP date string) and ``retry_after_ms`` set those headers;
    ``retry_info`` puts a ``google.rpc.RetryInfo`` delay in a Gemini error body (default: the
    numeric ``retry_after``, as Google's servers send the delay there).
    """
    h = dict(headers or {})
    if retry_after is not None:
        h["Retry-After"] = retry_after if isinstance(retry_after, str) else _num(retry_after)
    if retry_after_ms is not None:
        h["retry-after-ms"] = _num(retry_after_ms)
    return Behaviour(
        "error",
        status=status,
        headers=tuple(h.items()),
        message=message or f"scripted error {status}",
        code=code,
        seconds=retry_info if retry_info is not None else _seconds(retry_after),
    )


def stall(seconds: float, then: Behaviour | None = None) -> Behaviour:
    """Accept the request, then send nothing for ``seconds`` (past the client's read timeout)."""
    return Behaviour("stall", seconds=seconds, then=then or ok("too late"))


def drop() -> Behaviour:
    """Read the request, then close the socket without sending a byte."""
    return Behaviour("drop")


def malformed(body: str = '{"id": "chatcmpl-x", "choices": [ {"message": ') -> Behaviour:
    """A 200 response declared as JSON whose body is not valid JSON."""
    return Behaviour("malformed", text=body)


def _seconds(retry_after: float | str | None) -> float:
    return float(retry_after) if isinstance(retry_after, int | float) else 0.0


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() when the request was fully read
    behaviour: Behaviour | None = None  # what the server did with it
    stream: bool = False  # answered with server-sent events
    pieces_sent: int = 0  # streamed text pieces written to the socket
    disconnected: bool = False  # the client hung up before the stream's end
    finished_at: float | None = None  # time.monotonic() when the reply ended (sent, cut, or the client left)

    @property
    def protocol(self) -> str | None:
        """``openai``, ``anthropic`` or ``gemini``, from the path."""
        return _protocol(self.path)


@dataclass
class _State:
    script: list[Behaviour]
    default: Behaviour
    received: list[Received] = field(default_factory=list)
    routes: list[tuple[str, list[Behaviour]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def next(self, rec: Received, raw: str = "") -> Behaviour:
        with self.lock:
            self.received.append(rec)
            behaviour = None
            for needle, script in self.routes:
                if script and needle in raw:
                    behaviour = script.pop(0)
                    break
            if behaviour is None:
                behaviour = self.script.pop(0) if self.script else self.default
            rec.behaviour = behaviour
            return behaviour


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    state: _State

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that hung up (a cancelled stream) is part of the script, not a failure
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        rec = Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
        proto = _protocol(self.path)
        if proto is None:
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        state = self.server.state
        data = body if isinstance(body, dict) else {}
        rec.stream = ":streamGenerateContent" in self.path if proto == "gemini" else data.get("stream") is True
        behaviour = state.next(rec, raw.decode("utf-8", "replace"))
        try:
            self._act(proto, behaviour, data, rec)
        finally:
            rec.finished_at = time.monotonic()

    def _act(self, proto: str, b: Behaviour, body: dict[str, Any], rec: Received) -> None:
        if b.action == "stall":
            self.server.state.stop.wait(b.seconds)
            if b.then is not None:
                try:
                    self._act(proto, b.then, body, rec)
                except OSError:
                    pass  # the client gave up, as intended
            return
        if b.action == "drop" or (b.action == "cut" and not rec.stream):
            self._drop()
            return
        if b.action == "malformed":
            self._send_raw(200, b.text.encode(), {"Content-Type": "application/json"})
            return
        if b.action == "error" or (b.action == "stream_error" and not rec.stream):
            self._send(b.status, _error_body(proto, b), dict(b.headers))
            return
        model = str(body.get("model") or _path_model(self.path) or "scripted-model")
        if rec.stream:
            self._stream(proto, b, model, body, rec)
        else:
            self._send(200, _ok_body(proto, b, model, body))

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass

    # -- streaming --------------------------------------------------------------------------------
    def _stream(self, proto: str, b: Behaviour, model: str, body: dict[str, Any], rec: Received) -> None:
        events = _SSE[proto](b, model, body)
        pieces = b.stream_pieces()
        limit = b.after if b.action in ("cut", "stream_error") else len(pieces)
        self.send_response(200)
        rid = f"req_{uuid.uuid4().hex[:16]}"
        for name, value in (
            ("request-id", rid),
            ("x-request-id", rid),
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("Cache-Control", "no-cache"),
            ("Transfer-Encoding", "chunked"),
        ):
            self.send_header(name, value)
        self.end_headers()
        if not self._chunk(rec, events.start()):
            return
        for i, piece in enumerate(pieces[:limit]):
            if i and b.delay and self.server.state.stop.wait(b.delay):
                return
            if not self._chunk(rec, events.piece(piece, last=i == len(pieces) - 1)):
                return
            rec.pieces_sent += 1
        if b.action == "cut":
            self._drop()
            return
        if b.action == "stream_error":
            self._chunk(rec, events.error(b))
        else:
            self._chunk(rec, events.end())
        self._chunk(rec, b"", final=True)  # the terminating zero-length chunk

    def _chunk(self, rec: Received, data: bytes, *, final: bool = False) -> bool:
        """One HTTP chunk; False (and the connection marked closed) when the client has gone."""
        if rec.disconnected:
            return False
        if not data and not final:
            return True  # nothing to send (a zero-length chunk would end the body)
        try:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except OSError:
            rec.disconnected = True
            self.close_connection = True
            return False
        return True

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        self._send_raw(status, json.dumps(payload).encode(), h)

    def _send_raw(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        rid = f"req_{uuid.uuid4().hex[:16]}"
        self.send_header("request-id", rid)
        self.send_header("x-request-id", rid)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _protocol(path: str) -> str | None:
    p = path.split("?", 1)[0]
    if p.endswith("/chat/completions"):
        return "openai"
    if p.endswith("/messages"):
        return "anthropic"
    if ":generateContent" in p or ":streamGenerateContent" in p:
        return "gemini"
    return None


def _forced_tool(request: dict[str, Any]) -> str | None:
    """The tool an Anthropic request forces (``tool_choice: {"type": "tool", "name": ...}``)."""
    choice = request.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        return str(choice.get("name"))
    return None


def _tool_input(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {"unparsed": text}


def _path_model(path: str) -> str | None:
    p = path.split("?", 1)[0]
    if "/models/" in p and ":" in p:
        return p.rsplit("/models/", 1)[1].split(":", 1)[0]
    return None


def _ok_body(proto: str, b: Behaviour, model: str, request: dict[str, Any]) -> dict[str, Any]:
    if proto == "openai":
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fault",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": b.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": b.finish_reason or "stop",
                }
            ],
            "usage": {
                "prompt_tokens": b.input_tokens,
                "completion_tokens": b.output_tokens,
                "total_tokens": b.input_tokens + b.output_tokens,
                "prompt_tokens_details": {"cached_tokens": b.cached_tokens, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": b.thoughts_tokens, "audio_tokens": 0},
            },
        }
    if proto == "anthropic":
        tool = _forced_tool(request)
        content: list[dict[str, Any]]
        if tool is not None:
            content = [
                {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", "name": tool, "input": _tool_input(b.text)}
            ]
        else:
            content = [{"type": "text", "text": b.text}] if b.text else []
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": b.finish_reason or ("tool_use" if tool else "end_turn"),
            "stop_sequence": None,
            "usage": {
                "input_tokens": b.input_tokens,
                "output_tokens": b.output_tokens,
                "cache_creation_input_tokens": b.cache_creation_tokens,
                "cache_read_input_tokens": b.cached_tokens,
            },
        }
    usage: dict[str, Any] = {
        "promptTokenCount": b.input_tokens,
        "candidatesTokenCount": b.output_tokens,
        "totalTokenCount": b.input_tokens + b.output_tokens + b.thoughts_tokens,
    }
    if b.cached_tokens:
        usage["cachedContentTokenCount"] = b.cached_tokens
    if b.thoughts_tokens:
        usage["thoughtsTokenCount"] = b.thoughts_tokens
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": b.text}] if b.text else []},
                "finishReason": b.finish_reason or "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:20],
    }


def _openai_usage(b: Behaviour) -> dict[str, Any]:
    return {
        "prompt_tokens": b.input_tokens,
        "completion_tokens": b.output_tokens,
        "total_tokens": b.input_tokens + b.output_tokens,
        "prompt_tokens_details": {"cached_tokens": b.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": b.thoughts_tokens, "audio_tokens": 0},
    }


def _gemini_usage(b: Behaviour) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": b.input_tokens,
        "candidatesTokenCount": b.output_tokens,
        "totalTokenCount": b.input_tokens + b.output_tokens + b.thoughts_tokens,
    }
    if b.cached_tokens:
        usage["cachedContentTokenCount"] = b.cached_tokens
    if b.thoughts_tokens:
        usage["thoughtsTokenCount"] = b.thoughts_tokens
    return usage


def _sse(data: Any, event: str | None = None, *, crlf: bool = False) -> bytes:
    nl = "\r\n" if crlf else "\n"
    head = f"event: {event}{nl}" if event else ""
    return f"{head}data: {json.dumps(data)}{nl}{nl}".encode()


class _OpenAIEvents:
    """``chat.completion.chunk`` events, as api.openai.com sends them."""

    def __init__(self, b: Behaviour, model: str, request: dict[str, Any]) -> None:
        self.b = b
        self.usage = bool((request.get("stream_options") or {}).get("include_usage"))
        self.base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fault",
            "service_tier": "default",
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            **self.base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.usage:
            data["usage"] = None
        return _sse(data)

    def start(self) -> bytes:
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def piece(self, text: str, last: bool) -> bytes:
        return self._chunk({"content": text})

    def end(self) -> bytes:
        out = self._chunk({}, self.b.finish_reason or "stop")
        if self.usage:
            out += _sse({**self.base, "choices": [], "usage": _openai_usage(self.b)})
        return out + b"data: [DONE]\n\n"

    def error(self, b: Behaviour) -> bytes:
        etype = "server_error" if b.status >= 500 else "invalid_request_error"
        return _sse({"error": {"message": b.message, "type": etype, "param": None, "code": None}})


class _AnthropicEvents:
    """Messages API stream events; a forced tool's input goes out as ``input_json_delta`` pieces."""

    def __init__(self, b: Behaviour, model: str, request: dict[str, Any]) -> None:
        self.b = b
        self.model = model
        self.tool = _forced_tool(request)

    def start(self) -> bytes:
        b = self.b
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": b.input_tokens,
                "cache_creation_input_tokens": b.cache_creation_tokens,
                "cache_read_input_tokens": b.cached_tokens,
                "output_tokens": 1,
            },
        }
        if self.tool is not None:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:20]}",
                "name": self.tool,
                "input": {},
            }
        else:
            block = {"type": "text", "text": ""}
        return (
            _sse({"type": "message_start", "message": message}, "message_start")
            + _sse({"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start")
            + _sse({"type": "ping"}, "ping")
        )

    def piece(self, text: str, last: bool) -> bytes:
        if self.tool is not None:
            delta = {"type": "input_json_delta", "partial_json": text}
        else:
            delta = {"type": "text_delta", "text": text}
        return _sse({"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta")

    def end(self) -> bytes:
        stop = self.b.finish_reason or ("tool_use" if self.tool else "end_turn")
        return (
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            + _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": self.b.output_tokens},
                },
                "message_delta",
            )
            + _sse({"type": "message_stop"}, "message_stop")
        )

    def error(self, b: Behaviour) -> bytes:
        etype = _ANTHROPIC_TYPES.get(b.status, "api_error" if b.status >= 500 else "invalid_request_error")
        return _sse({"type": "error", "error": {"type": etype, "message": b.message}}, "error")


class _GeminiEvents:
    """``GenerateContentResponse`` chunks; the last text chunk has the finishReason and full usage."""

    def __init__(self, b: Behaviour, model: str, request: dict[str, Any]) -> None:
        self.b = b
        self.model = model
        self.rid = uuid.uuid4().hex[:20]
        self.ended = False

    def _chunk(self, text: str | None, finish: bool) -> bytes:
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": [{"text": text}] if text else []},
            "index": 0,
        }
        usage: dict[str, Any] = {"promptTokenCount": self.b.input_tokens, "totalTokenCount": self.b.input_tokens}
        if finish:
            candidate["finishReason"] = self.b.finish_reason or "STOP"
            usage = _gemini_usage(self.b)
        data = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": self.model, "responseId": self.rid}
        return _sse(data, crlf=True)

    def start(self) -> bytes:
        return b""

    def piece(self, text: str, last: bool) -> bytes:
        finish = last and self.b.action == "ok"
        self.ended = self.ended or finish
        return self._chunk(text, finish)

    def end(self) -> bytes:
        return b"" if self.ended else self._chunk(None, True)

    def error(self, b: Behaviour) -> bytes:
        status = _GOOGLE_STATUS.get(b.status, "UNKNOWN")
        return _sse({"error": {"code": b.status, "message": b.message, "status": status}}, crlf=True)


_SSE: dict[str, Any] = {"openai": _OpenAIEvents, "anthropic": _AnthropicEvents, "gemini": _GeminiEvents}


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _error_body(proto: str, b: Behaviour) -> dict[str, Any]:
    if proto == "openai":
        etype = {429: "requests", 401: "invalid_request_error"}.get(b.status, "invalid_request_error")
        if b.status >= 500:
            etype = "server_error"
        return {"error": {"message": b.message, "type": etype, "param": None, "code": b.code}}
    if proto == "anthropic":
        etype = _ANTHROPIC_TYPES.get(b.status, "api_error" if b.status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": etype, "message": b.message}}
    details: list[dict[str, Any]] = []
    if b.seconds:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{_num(b.seconds)}s"})
    return {
        "error": {
            "code": b.status,
            "message": b.message,
            "status": _GOOGLE_STATUS.get(b.status, "UNKNOWN"),
            "details": details,
        }
    }


class FaultServer:
    """A threaded HTTP server on 127.0.0.1 that follows a script; use as a context manager."""

    def __init__(self, script: Iterable[Behaviour] = (), *, default: Behaviour | None = None) -> None:
        self._state = _State(list(script), default or ok("default reply"))
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.state = self._state
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fault-server", daemon=True
        )

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._state.stop.set()  # wake stalled handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scripting and inspection -------------------------------------------------------------------
    def script(self, *behaviours: Behaviour) -> None:
        """Append behaviours to the script."""
        with self._state.lock:
            self._state.script.extend(behaviours)

    def route(self, needle: str, *behaviours: Behaviour) -> None:
        """Requests whose raw body contains ``needle`` take these behaviours first (in order).

        The needle is matched against the JSON text the client sent, so keep it to plain
        characters that JSON does not escape. Routes are tried in the order they were added.
        """
        with self._state.lock:
            for existing, script in self._state.routes:
                if existing == needle:
                    script.extend(behaviours)
                    return
            self._state.routes.append((needle, list(behaviours)))

    @property
    def received(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.received)

    @property
    def count(self) -> int:
        """How many requests the server has received."""
        with self._state.lock:
            return len(self._state.received)

    @property
    def remaining(self) -> int:
        """Behaviours not yet used, in the main script and every route."""
        with self._state.lock:
            return len(self._state.script) + sum(len(s) for _, s in self._state.routes)

    # -- addresses ------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_url(self) -> str:
        """Base URL for OpenAI-style clients (they append ``/chat/completions``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_url(self) -> str:
        """Base URL for the Anthropic SDK (it appends ``/v1/messages``)."""
        return self.url

    @property
    def gemini_url(self) -> str:
        """Base URL for google-genai (it appends ``/<version>/models/<m>:generateContent``)."""
        return self.url
