"""The ``unbounded`` command line: one argparse tree for every command.

Each command module contributes its subcommand with ``add_parser(subparsers)``, which registers the
parser, its arguments and ``func`` (a handler ``args -> exit code``); this module builds the tree
and dispatches. Handlers import what they need when they run, so ``unbounded --help`` stays fast.
The answer alone goes to stdout, so commands compose in pipes; progress and errors go to stderr.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from .exitcodes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, fail


def build_parser() -> argparse.ArgumentParser:
    from ..batch.cli import add_parser as add_batch
    from ..bench import cli as bench_cli
    from ..serve.cli import add_parser as add_serve
    from ..serve.mcp_cli import add_parser as add_mcp
    from ..trace_view import add_parser as add_trace
    from ..view import add_parser as add_view
    from . import ask, chat, models_cmd

    p = argparse.ArgumentParser(
        prog="unbounded", description="Recursive Language Models: ask questions of inputs of any size."
    )
    p.add_argument("--version", action="version", version=f"unbounded {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ask.add_parser(sub)
    chat.add_parser(sub)
    add_trace(sub)
    add_view(sub)
    models_cmd.add_parser(sub)
    bench_cli.add_parser(sub)
    add_batch(sub)
    add_serve(sub)
    add_mcp(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:  # a command group given without its subcommand
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return EXIT_USAGE
    try:
        return int(func(args) or EXIT_OK)
    except KeyboardInterrupt:
        return fail(EXIT_INTERRUPTED, "interrupted")
    except BrokenPipeError:
        return EXIT_OK


__all__ = ["build_parser", "main"]
