"""The viewer as an ASGI app (Starlette): the page and a small JSON API over trace indexes.

``create_app(path)`` serves one trace file, or a bench folder (its results table and every trace
it lists; a folder is listed again on each ``/api/info``, so traces written since appear); mount it anywhere (``Mount("/ui", app=create_app(...))``): the page finds its API from
the path it was served under. Trace URLs carry a trace number and a node key, never a file path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from . import api
from .errors import TraceFileError, UnknownNodeError
from .library import BenchFolder, TraceLibrary
from .page import render_page

#: Host headers a loopback-bound viewer answers (guards against DNS rebinding).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


class _JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        from .page import embed_json

        return embed_json(content).encode("utf-8")


def create_app(
    target: str | Path,
    *,
    trusted_hosts: Sequence[str] | None = None,
    poll_ms: int = 500,
    debug: bool = False,
) -> Starlette:
    """An app that shows ``target``: a trace file (``.jsonl``) or a bench folder.

    Raises ``TraceFileError`` when the target is missing or unreadable. ``trusted_hosts`` limits
    the Host headers served (pass ``LOOPBACK_HOSTS`` when bound to loopback).
    """
    target = Path(target)
    library = TraceLibrary()
    bench: BenchFolder | None = None
    if target.is_dir():
        bench = BenchFolder.load(target, library)
    elif target.is_file():
        library.add(target.resolve(), target.name)
        library.index(0)  # index now: a bad file fails at start, not on the first click
    else:
        raise TraceFileError(f"{target}: no such trace file or bench folder")

    def page(request: Request) -> Response:
        base = request.scope.get("root_path", "").rstrip("/") + "/"
        config = {
            "mode": "server",
            "view": "bench" if bench is not None else "trace",
            "base": base,
            "poll_ms": poll_ms,
            "title": target.name,
        }
        return HTMLResponse(render_page(config, title=f"{target.name} · unbounded"))

    def with_trace(fn: Callable[..., Any]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                tid = int(request.path_params["tid"])
                index = library.index(tid)
                return _JSON(fn(index, request, library.entry(tid).name))
            except UnknownNodeError as exc:
                return _JSON({"error": str(exc)}, status_code=404)
            except TraceFileError as exc:
                return _JSON({"error": str(exc)}, status_code=410)
            except ValueError as exc:
                return _JSON({"error": f"bad request: {exc}"}, status_code=400)

        return endpoint

    def info(request: Request) -> Response:
        nonlocal bench
        if bench is not None:  # a folder is read again: runs still being written add traces and rows
            try:
                bench = BenchFolder.load(target, library)
            except TraceFileError as exc:
                return _JSON({"error": str(exc)}, status_code=410)
        return _JSON(
            {
                "view": "bench" if bench is not None else "trace",
                "traces": library.listing(),
                "bench": bench.to_dict() if bench is not None else None,
            }
        )

    def q(request: Request, name: str, default: str = "") -> str:
        return request.query_params.get(name, default)

    routes = [
        Route("/", page),
        Route("/api/info", info),
        Route("/api/t/{tid:int}/meta", with_trace(lambda ix, r, name: api.meta(ix, name))),
        Route(
            "/api/t/{tid:int}/children",
            with_trace(
                lambda ix, r, name: api.children(
                    ix, q(r, "key") or None, int(q(r, "offset", "0")), min(1000, int(q(r, "limit", str(api.PAGE))))
                )
            ),
        ),
        Route("/api/t/{tid:int}/node", with_trace(lambda ix, r, name: api.detail(ix, q(r, "key")))),
        Route("/api/t/{tid:int}/reveal", with_trace(lambda ix, r, name: api.reveal(ix, q(r, "key")))),
        Route("/api/t/{tid:int}/timeline", with_trace(lambda ix, r, name: api.timeline(ix))),
        Route(
            "/api/t/{tid:int}/search",
            with_trace(lambda ix, r, name: api.search(ix, q(r, "q"), min(1000, int(q(r, "limit", "200"))))),
        ),
        Route("/api/t/{tid:int}/changes", with_trace(lambda ix, r, name: api.changes(ix, int(q(r, "since", "0"))))),
    ]
    middleware = []
    if trusted_hosts:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(trusted_hosts)))
    app = Starlette(debug=debug, routes=routes, middleware=middleware)
    app.state.library = library
    app.state.bench = bench
    return app
