"""The ASGI app: OpenAI's chat completions and models routes, registered contexts, traces, health,
metrics, and (optionally) the MCP server at ``/mcp`` — behind one key check, one body limit and one
error shape.

``create_app(config)`` builds it; run it with any ASGI server (``unbounded serve`` uses uvicorn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..errors import MissingExtraError
from . import openai_format as fmt
from .bodies import BodyLimit, read_json
from .chat import context_value, parse_chat
from .config import ServeConfig, is_loopback
from .errors import MethodNotAllowed, NotFound, ServeError
from .metrics import CONTENT_TYPE as METRICS_TYPE
from .runs import RunHandle, as_serve_error
from .service import Service
from .sse import ChatStream
from .uploads import read_source

log = logging.getLogger("unbounded.serve")

OPEN_PATHS = frozenset({"/healthz"})
#: Host headers a loopback-bound server answers (against DNS rebinding from web pages).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

Endpoint = Callable[[Request], Awaitable[Response]]


def error_response(exc: ServeError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())


def owner_of(request: Request) -> str:
    return request.scope["unbounded.owner"]


def guarded(fn: Endpoint) -> Endpoint:
    """Any failure of a route becomes OpenAI's error shape; nothing unexpected escapes (or shows a traceback)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except Exception as exc:
            error = as_serve_error(exc)
            request.app.state.service.metrics.errors.labels(kind=error.code or "error").inc()
            return error_response(error)

    return endpoint


def server_timing(request: Request, handle: RunHandle) -> dict[str, str]:
    total = (time.perf_counter() - request.scope.get("unbounded.t0", time.perf_counter())) * 1000
    return {"Server-Timing": f"queue;dur={handle.queued_seconds * 1000:.2f}, run;dur={handle.run_seconds * 1000:.2f}, "
                             f"total;dur={total:.2f}"}  # fmt: skip


# -- routes ---------------------------------------------------------------------------------------
@guarded
async def chat_completions(request: Request) -> Response:
    service: Service = request.app.state.service
    body = await read_json(request)
    req = parse_chat(body, service.config.inline_chars)
    prepared = service.prepare(
        owner_of(request),
        question=req.question,
        model_id=req.model,
        context=context_value(req.pieces) if not req.server_side else None,
        paths=req.paths,
        include=req.include,
        exclude=req.exclude,
        context_id=req.context_id,
        budget=req.budget,
        output=req.output,
    )
    handle = service.launch(prepared, collect_events=req.stream and req.progress)
    model = req.model
    if req.stream:
        return ChatStream(handle, model, progress=req.progress, include_usage=req.include_usage,  # type: ignore[return-value]
                          keepalive=service.config.keepalive_seconds)  # fmt: skip
    await _wait_or_disconnect(request, handle)
    if handle.cancelled:
        return Response(status_code=499)  # nobody is listening
    if handle.failure is not None:
        raise handle.failure
    assert handle.result is not None
    failure = fmt.failure_of(handle.result)
    if failure is not None:
        raise failure
    return JSONResponse(fmt.completion(handle, model, handle.result), headers=server_timing(request, handle))


async def _wait_or_disconnect(request: Request, handle: RunHandle) -> None:
    """Wait for the run; a client that hangs up first cancels it (the watcher does, at once)."""

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        handle.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        await handle.wait()
    finally:
        watcher.cancel()
        if not handle.done:  # this request itself was cancelled
            handle.cancel()


@guarded
async def list_models(request: Request) -> Response:
    service: Service = request.app.state.service
    return JSONResponse({"object": "list", "data": [_model(mid, service) for mid in service.models.ids()]})


@guarded
async def get_model(request: Request) -> Response:
    service: Service = request.app.state.service
    model_id = request.path_params["model_id"]
    service.models.spec_for(model_id)
    return JSONResponse(_model(model_id, service))


def _model(model_id: str, service: Service) -> dict[str, Any]:
    spec = service.models.spec_for(model_id)
    return {"id": model_id, "object": "model", "created": service.started, "owned_by": "unbounded",
            "root_model": spec, "sub_model": service.models.sub().name if service.models.sub() else spec}  # fmt: skip


@guarded
async def create_context(request: Request) -> Response:
    service: Service = request.app.state.service
    source = await read_source(request, service)
    try:
        entry = await service.register(owner_of(request), source)
    finally:
        if source.cleanup is not None:
            source.cleanup()
    return JSONResponse(entry.to_dict(), status_code=201)


@guarded
async def list_contexts(request: Request) -> Response:
    service: Service = request.app.state.service
    return JSONResponse({"object": "list", "data": [e.to_dict() for e in service.registry.listing(owner_of(request))]})


@guarded
async def context_item(request: Request) -> Response:
    service: Service = request.app.state.service
    context_id = request.path_params["context_id"]
    if request.method == "DELETE":
        entry = await service.delete_context(owner_of(request), context_id)
        return JSONResponse({"id": entry.id, "object": "context", "deleted": True})
    return JSONResponse(service.registry.get(owner_of(request), context_id).to_dict())


@guarded
async def get_trace(request: Request) -> Response:
    service: Service = request.app.state.service
    entry = service.traces.get(request.path_params["trace_id"], owner_of(request))
    return FileResponse(entry.path, media_type="application/x-ndjson", filename=f"{entry.id}.jsonl")


async def healthz(request: Request) -> Response:
    service: Service = request.app.state.service
    return JSONResponse({"status": "ok", "version": __version__, "in_flight": service.gate.running,
                         "queued": service.gate.queued, "contexts": service.registry.count})  # fmt: skip


async def metrics(request: Request) -> Response:
    service: Service = request.app.state.service
    return Response(service.metrics.render(), media_type=METRICS_TYPE)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"))
    if exc.status_code == 404:
        return error_response(NotFound(f"no route {request.url.path}: the API is under /v1 (see GET /v1/models)"))
    return error_response(ServeError(str(exc.detail)))


# -- middleware -----------------------------------------------------------------------------------
class Gatekeeper:
    """Outermost layer: request timing and counts, the Host check on loopback, the bearer key, and a
    last guard that turns any escaped failure into a 500 in OpenAI's shape."""

    def __init__(self, app: ASGIApp, service: Service, loopback: bool) -> None:
        self.app = app
        self.service = service
        self.loopback = loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["unbounded.t0"] = time.perf_counter()
        path = scope.get("path", "")
        status: dict[str, int] = {}
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                status["code"] = message["status"]
            await send(message)

        try:
            if self.loopback and _host(scope) not in LOOPBACK_HOSTS:
                raise NotFound("unknown host: this server answers only to 127.0.0.1 and localhost", code="bad_host")
            if path not in OPEN_PATHS:
                scope["unbounded.owner"] = self.service.keys.owner(_header(scope, b"authorization"))
            await self.app(scope, receive, tracked)
        except Exception as exc:
            error = as_serve_error(exc)
            self.service.metrics.errors.labels(kind=error.code or "error").inc()
            if not started:
                await error_response(error)(scope, receive, tracked)
        finally:
            self.service.metrics.requests.labels(route=_route(path), status=str(status.get("code", 0))).inc()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _host(scope: Scope) -> str:
    host = (_header(scope, b"host") or "").strip().lower()
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _route(path: str) -> str:
    """A bounded label for the metrics: ids are left out."""
    for prefix in ("/v1/contexts/", "/v1/traces/", "/v1/models/"):
        if path.startswith(prefix):
            return prefix + "{id}"
    return path if path in KNOWN_ROUTES else "other"


KNOWN_ROUTES = frozenset({"/v1/chat/completions", "/v1/models", "/v1/contexts", "/healthz", "/metrics", "/mcp"})


# -- the app --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _extra(flag: str, what: str, extra: str) -> Iterator[None]:
    """An optional part's import: a missing module becomes a MissingExtraError that names the extra."""
    try:
        yield
    except ImportError as exc:
        raise MissingExtraError(f"{flag} needs {what} ({exc.name} is missing): pip install 'unbounded[{extra}]'") from exc


def create_app(config: ServeConfig, *, service: Service | None = None) -> ASGIApp:
    """The server for ``config`` (checked: ``ConfigError`` for unsafe or unusable settings)."""
    service = service or Service(config)
    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/v1/contexts", create_context, methods=["POST"]),
        Route("/v1/contexts", list_contexts, methods=["GET"]),
        Route("/v1/contexts/{context_id}", context_item, methods=["GET", "DELETE"]),
        Route("/v1/traces/{trace_id}", get_trace, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    mcp_server = None
    if config.mcp:
        with _extra("--mcp", "the mcp package", "mcp"):
            from .mcp_server import build_mcp, http_routes

        mcp_server = build_mcp(service, owner=lambda headers: service.keys.owner_of_headers(headers))
        routes.extend(http_routes(mcp_server, host=config.host))

    if config.ui:
        with _extra("--ui", "the viewer", "view"):
            from ..view.server import create_app as viewer_app

        routes.append(Mount("/ui", app=viewer_app(service.traces.folder)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if mcp_server is not None:
                await stack.enter_async_context(mcp_server.session_manager.run())
            try:
                yield
            finally:
                await service.aclose()

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.service = service

    def limit_for(path: str) -> int:
        return config.max_upload_bytes if path.startswith("/v1/contexts") else config.max_body_bytes

    wrapped: ASGIApp = BodyLimit(app, limit_for)
    return Gatekeeper(wrapped, service, is_loopback(config.host))
