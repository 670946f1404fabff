"""``unbounded serve``: the OpenAI-compatible server (and ``--mcp`` for MCP at ``/mcp``)."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

from ..cli.exitcodes import EXIT_MODEL, EXIT_OK, EXIT_USAGE, fail
from ..cli.options import add_run_arguments, budget_from_args, limits_from_args
from .config import DEFAULT_MAX_SECONDS, MIB, ServeConfig, is_loopback

KEY_ENV = "UNBOUNDED_API_KEY"


def add_server_arguments(p: argparse.ArgumentParser, *, default_port: int = 8000) -> None:
    """The flags ``serve`` and ``mcp`` share: where to listen, keys, folders, models, limits."""
    add_run_arguments(p, scope="request (a cap: requests may ask for less)")
    p.set_defaults(max_seconds=DEFAULT_MAX_SECONDS)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=default_port, help=f"port (default {default_port}; 0: any free port)")
    p.add_argument("--api-key", action="append", default=None, metavar="KEY",
                   help=f"a bearer key clients must send (repeatable; default: ${KEY_ENV}, comma-separated). "
                   "Required when --host is not loopback")  # fmt: skip
    p.add_argument("--allow-path", action="append", default=[], metavar="DIR", type=Path,
                   help="a folder whose files requests may name (repeatable); nothing else is read")  # fmt: skip
    p.add_argument("--allow-model", action="append", default=[], metavar="SPEC",
                   help="another root model requests may name as rlm/SPEC (repeatable)")  # fmt: skip
    p.add_argument("--max-concurrent", type=int, default=4, help="runs at once (default 4)")
    p.add_argument("--max-queue", type=int, default=16, help="runs waiting for a slot; beyond it, 429 (default 16)")
    p.add_argument("--max-body-mb", type=float, default=128, help="largest chat request body, MiB (default 128)")
    p.add_argument("--max-upload-mb", type=float, default=1024, help="largest context upload, MiB (default 1024)")
    p.add_argument("--context-memory-mb", type=float, default=2048,
                   help="characters (in Mi) all registered contexts may hold; least recently used idle ones are "
                   "evicted past it (default 2048; each costs about twice that in memory: host and worker)")  # fmt: skip
    p.add_argument("--max-contexts", type=int, default=32, help="registered contexts at most (default 32)")
    p.add_argument("--inline-chars", type=int, default=8192,
                   help="parts of the last user message up to this size are the question; longer ones are context")  # fmt: skip
    p.add_argument("--trace-dir", type=Path, default=None,
                   help="keep every run's trace here (default: a temporary folder, newest --max-traces kept)")  # fmt: skip
    p.add_argument("--max-traces", type=int, default=1000, help="traces kept in the temporary folder (default 1000)")


def config_from_args(args: argparse.Namespace, *, mcp: bool = False, ui: bool = False) -> ServeConfig:
    keys = args.api_key if args.api_key else [k.strip() for k in os.environ.get(KEY_ENV, "").split(",") if k.strip()]
    return ServeConfig(
        host=args.host,
        port=args.port,
        model=args.model,
        sub_model=args.sub_model,
        allow_models=tuple(args.allow_model),
        api_keys=tuple(keys),
        allow_paths=tuple(args.allow_path),
        max_concurrent=args.max_concurrent,
        max_queue=args.max_queue,
        max_body_bytes=int(args.max_body_mb * MIB),
        max_upload_bytes=int(args.max_upload_mb * MIB),
        budget=budget_from_args(args),
        max_depth=args.depth,
        repl=args.repl,
        limits=limits_from_args(args),
        inline_chars=args.inline_chars,
        context_memory_chars=int(args.context_memory_mb * MIB),
        max_contexts=args.max_contexts,
        trace_dir=args.trace_dir,
        max_traces=args.max_traces,
        mcp=mcp,
        ui=ui,
    )


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve RLMs behind an OpenAI-compatible API (chat completions, contexts, metrics)",
        description=(
            "Serve RLMs over HTTP with OpenAI's chat completions API: point any OpenAI client at "
            "http://HOST:PORT/v1 with model 'rlm'. The last user message is the question and the rest of the "
            "conversation the context; extension fields name files inside --allow-path or registered contexts "
            "(POST /v1/contexts). Also /v1/models, /healthz, /metrics, and with --mcp the MCP server at /mcp."
        ),
    )
    add_server_arguments(p)
    p.add_argument("--mcp", action="store_true", help="also serve MCP (streamable HTTP) at /mcp (needs the mcp extra)")
    p.add_argument("--ui", action="store_true",
                   help="serve the trace viewer over the traces folder at /ui (loopback, no API keys; the view extra)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args, mcp=args.mcp, ui=args.ui)
    except ValueError as exc:  # a budget flag out of range
        return fail(EXIT_USAGE, str(exc), prog="unbounded serve")
    return serve(config, log_level=args.log_level)


def serve(config: ServeConfig, *, log_level: str = "warning", prog: str = "unbounded serve") -> int:
    try:
        import uvicorn

        from ..errors import ConfigError
        from .app import create_app
    except ImportError as exc:
        return fail(EXIT_MODEL, f"the server needs {exc.name}: pip install 'unbounded[serve]'", prog=prog)
    try:
        app = create_app(config)
    except ConfigError as exc:  # a missing extra (MissingExtraError names it) among them
        return fail(EXIT_MODEL, str(exc), prog=prog)
    try:
        sock = bind(config.host, config.port)
    except OSError as exc:
        return fail(EXIT_USAGE, f"cannot listen on {config.host}:{config.port}: {exc.strerror}; pick another --port",
                    prog=prog)  # fmt: skip
    port = sock.getsockname()[1]
    shown = f"[{config.host}]" if ":" in config.host else config.host
    print(f"{prog}: listening on http://{shown}:{port}/v1 (model 'rlm' = {config.model if isinstance(config.model, str) else config.model.name}; Ctrl-C to stop)",
          file=sys.stderr, flush=True)  # fmt: skip
    if not is_loopback(config.host):
        print(f"{prog}: listening beyond this machine ({config.host}); requests need the API key", file=sys.stderr)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on",
                                           timeout_graceful_shutdown=5))  # fmt: skip
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return EXIT_OK


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: a response's head and body go out at once, not 40 ms apart
    # (Nagle's algorithm waiting on the client's delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock
