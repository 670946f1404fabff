"""A scripted, protocol-faithful model server on loopback, for testing remote backends.

It speaks three wire protocols on one port, chosen by path:

* OpenAI Chat Completions: ``POST /v1/chat/completions``
* Anthropic Messages: ``POST /v1/messages``
* Gemini ``generateContent``: ``POST /<version>/models/<model>:generateContent``

Each request takes the next behaviour from a script (``ok``, ``error``, ``stall``, ``drop``,
``malformed``, ``empty``); when the script runs out, ``default`` answers. Every request received
is recorded with the behaviour it got, so tests can assert exact request counts, inspect the
bodies the SDKs sent and sum the usage the server really returned.

``route(needle, ...)`` scripts the requests whose body contains ``needle`` separately from the
rest, so concurrent calls (an ``llm_batch``) get their faults by content, not by arrival order.

    with FaultServer([error(429, retry_after=0.2), ok("hi")]) as server:
        backend = ...(base_url=server.openai_url)
        ...
        assert server.count == 2
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "Behaviour",
    "FaultServer",
    "Received",
    "drop",
    "empty",
    "error",
    "malformed",
    "ok",
    "stall",
]


@dataclass(frozen=True)
class Behaviour:
    """What the server does with one request."""

    action: str  # ok | error | stall | drop | malformed
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


def ok(
    text: str = "ok",
    *,
    input_tokens: int = 10,
    output_tokens: int = 5,
    cached_tokens: int = 0,
    cache_creation_tokens: int = 0,
    thoughts_tokens: int = 0,
    finish_reason: str | None = None,
) -> Behaviour:
    """A successful completion with exactly these token counts.

    ``input_tokens`` is the provider's own total prompt count where the protocol has one
    (OpenAI ``prompt_tokens``, Gemini ``promptTokenCount``), both of which include cached tokens.
    For Anthropic it is ``input_tokens``, which excludes cache reads and writes, as on the wire.
    """
    return Behaviour(
        "ok",
        text=text,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        cache_creation_tokens=cache_creation_tokens,
        thoughts_tokens=thoughts_tokens,
        finish_reason=finish_reason,
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
        behaviour = state.next(rec, raw.decode("utf-8", "replace"))
        self._act(proto, behaviour, body if isinstance(body, dict) else {})

    def _act(self, proto: str, b: Behaviour, body: dict[str, Any]) -> None:
        if b.action == "stall":
            self.server.state.stop.wait(b.seconds)
            if b.then is not None:
                try:
                    self._act(proto, b.then, body)
                except OSError:
                    pass  # the client gave up, as intended
            return
        if b.action == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        if b.action == "malformed":
            self._send_raw(200, b.text.encode(), {"Content-Type": "application/json"})
            return
        if b.action == "error":
            self._send(b.status, _error_body(proto, b), dict(b.headers))
            return
        model = str(body.get("model") or _path_model(self.path) or "scripted-model")
        self._send(200, _ok_body(proto, b, model, body))

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
    if ":generateContent" in p:
        return "gemini"
    return None


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
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": b.text}] if b.text else [],
            "stop_reason": b.finish_reason or "end_turn",
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
