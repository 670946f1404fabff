"""``python -m unbounded.serve [serve|mcp] ...``: the two commands without the rest of the CLI."""

from __future__ import annotations

import argparse
import sys

from . import cli, mcp_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unbounded.serve")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli.add_parser(sub)
    mcp_cli.add_parser(sub)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
