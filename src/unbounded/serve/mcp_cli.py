"""``unbounded mcp``: the RLM as an MCP server, over stdio (for editors and agents) or streamable HTTP."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ..cli.exitcodes import EXIT_MODEL, EXIT_OK, EXIT_USAGE, fail
from .auth import LOCAL_OWNER
from .cli import add_server_arguments, config_from_args, serve

PROG = "unbounded mcp"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "mcp",
        help="serve RLMs as MCP tools (ask, load_context, ask_context) over stdio or HTTP",
        description=(
            "An MCP server whose tools answer questions about files, folders or texts of any size with an RLM: "
            "ask(question, paths | text), load_context(paths | text) -> id, ask_context(id, question). Progress "
            "comes as notifications; every run's trace is the resource trace://<id>. Over stdio (the default) "
            "paths are read inside --allow-path (default: the current folder)."
        ),
    )
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                   help="stdio (default: for an MCP client that starts this command) or http (streamable HTTP at "
                   "/mcp, beside the OpenAI API)")  # fmt: skip
    add_server_arguments(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    if not args.allow_path and args.transport == "stdio":
        args.allow_path = [Path.cwd()]
    try:
        config = config_from_args(args, mcp=True)
    except ValueError as exc:  # a budget flag out of range
        return fail(EXIT_USAGE, str(exc), prog=PROG)
    if args.transport == "http":
        return serve(config, prog=PROG)
    try:
        from ..errors import ConfigError
        from .mcp_server import build_mcp
        from .service import Service
    except ImportError as exc:
        return fail(EXIT_MODEL, f"the MCP server needs {exc.name}: pip install 'unbounded[mcp]'", prog=PROG)
    config.host = "127.0.0.1"  # nothing listens: stdio is this process's own pipes
    try:
        service = Service(config)
    except ConfigError as exc:
        return fail(EXIT_MODEL, str(exc), prog=PROG)
    mcp = build_mcp(service, owner=lambda headers: LOCAL_OWNER)

    async def main() -> None:
        try:
            await mcp.run_stdio_async()
        finally:
            await service.aclose()

    print(f"{PROG}: serving MCP on stdio (reading inside {', '.join(map(str, config.allow_paths))})", file=sys.stderr)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return EXIT_OK
