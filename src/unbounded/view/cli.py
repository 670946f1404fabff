"""``unbounded view TRACE.jsonl | runs/DIR [--port N] [--no-browser] [--html OUT.html]``."""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any

from ..cli.exitcodes import EXIT_CONTEXT, EXIT_EMPTY, EXIT_MODEL, EXIT_OK, EXIT_USAGE, fail
from .errors import EmptyTraceError, TraceFileError

DEFAULT_PORT = 8765


def _fail(code: int, message: str) -> int:
    return fail(code, message, prog="unbounded view")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "view",
        help="open a trace (or a bench folder) in the browser, or export it as one HTML file",
        description=(
            "Show a trace in the browser: the recursion tree, every turn's code and output, sub-calls, a timeline "
            "of model calls, usage and cost, the run's config, and search. Follows a trace that a running "
            "'ask --trace' is writing. Given a bench folder, lists its results and opens each item's trace."
        ),
    )
    p.add_argument("path", help="a trace file (.jsonl) or a folder written by 'unbounded bench run'")
    p.add_argument("--port", type=int, default=None, help=f"port to serve on (default {DEFAULT_PORT}, or a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")
    p.add_argument("--html", metavar="OUT.html", help="write one self-contained HTML file instead of serving")
    p.add_argument(
        "--max-embed-mb",
        type=float,
        default=64.0,
        help="with --html: embed the full text of nodes up to this many MB (default 64); the rest keep their rows",
    )
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.exists():
        return _fail(EXIT_CONTEXT, f"no such trace file or folder: {path}")
    if args.html:
        return _export(path, Path(args.html), args.max_embed_mb)
    if args.port is not None and not 0 <= args.port <= 65535:
        return _fail(EXIT_USAGE, f"--port must be between 0 and 65535, not {args.port}")
    try:
        import uvicorn

        from .server import LOOPBACK_HOSTS, create_app
    except ImportError as exc:
        return _fail(
            EXIT_MODEL,
            f"the viewer's server needs starlette and uvicorn ({exc.name} is missing): "
            "pip install 'unbounded[view]'  (or use --html to write a file instead)",
        )
    loopback = args.host in ("127.0.0.1", "localhost", "::1")
    try:
        app = create_app(path, trusted_hosts=LOOPBACK_HOSTS if loopback else None)
    except TraceFileError as exc:
        return _fail(EXIT_CONTEXT, str(exc))
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        return _fail(EXIT_USAGE, f"cannot listen on {args.host}:{args.port}: {exc.strerror}; pick another --port")
    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown_host}:{port}/"
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    print(f"unbounded view: serving {path} at {url}  (Ctrl-C to stop)", file=sys.stderr, flush=True)
    if not loopback:
        print(
            f"unbounded view: warning: listening on {args.host}, so anyone who can reach it can read this trace",
            file=sys.stderr,
        )
    if not args.no_browser:
        threading.Thread(target=_open_when_up, args=(server, url), daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return EXIT_OK


def _bind(host: str, port: int | None) -> socket.socket:
    """A listening socket: the port asked for, else the default one, else any free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    candidates = [port] if port is not None else [DEFAULT_PORT, 0]
    last: OSError | None = None
    for p in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, p))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    assert last is not None
    raise last


def _open_when_up(server: Any, url: str) -> None:
    import time

    for _ in range(200):
        if server.started:
            webbrowser.open(url)
            return
        time.sleep(0.05)


def _export(path: Path, out: Path, max_mb: float) -> int:
    from .export import export_html

    if path.is_dir():
        return _fail(EXIT_USAGE, "--html writes one trace file; give a trace (.jsonl), not a folder")
    if max_mb <= 0:
        return _fail(EXIT_USAGE, "--max-embed-mb must be positive")
    try:
        result = export_html(path, out, max_bytes=int(max_mb * (1 << 20)))
    except EmptyTraceError as exc:
        return _fail(EXIT_EMPTY, str(exc))
    except TraceFileError as exc:
        return _fail(EXIT_CONTEXT, str(exc))
    capped = " (capped: the rest of the nodes keep their rows but not their text)" if result.capped else ""
    print(
        f"unbounded view: wrote {out} ({result.bytes / (1 << 20):.1f} MB, {result.nodes:,} nodes, "
        f"{result.details:,} with full text){capped}",
        file=sys.stderr,
    )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="unbounded")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["view", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))
