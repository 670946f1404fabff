"""The command line's input options (``--include``, ``--exclude``, the caps…), for any command that
loads inputs: ``add_load_arguments(parser)`` adds them, ``load_options(args)`` turns them into the
keyword options of ``load_inputs``/``load_context``. The names match what the loaders' messages say.
"""

from __future__ import annotations

import argparse
from typing import Any

from .options import parse_size


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _count(text: str) -> int:
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inputs", "how files, folders and archives are read")
    group.add_argument(
        "--include", action="append", default=[], metavar="GLOB",
        help="load only files matching this gitignore-style glob (repeatable), e.g. '*.py' or 'docs/**'",
    )  # fmt: skip
    group.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB",
        help="leave out files and folders matching this glob (repeatable), e.g. 'tests/' or '*.min.js'",
    )  # fmt: skip
    group.add_argument("--no-gitignore", action="store_true", help="load files that .gitignore ignores")
    group.add_argument(
        "--no-default-excludes", action="store_true",
        help="also load node_modules, .git, .venv, __pycache__, dist, build and the like",
    )  # fmt: skip
    group.add_argument(
        "--follow-symlinks", action="store_true", help="follow symlinks that lead outside the folder"
    )  # fmt: skip
    group.add_argument("--no-notebook-outputs", action="store_true", help="leave out the outputs of notebook cells")
    group.add_argument(
        "--encoding", metavar="CODEC", help="decode text that is not UTF-8 with this codec (e.g. cp1252)"
    )
    group.add_argument("--max-file-size", type=_size, metavar="SIZE", help="skip files larger than this (default 1G)")
    group.add_argument(
        "--max-decompressed", type=_size, metavar="SIZE",
        help="refuse compressed files and archives that expand past this (default 1G)",
    )  # fmt: skip
    group.add_argument(
        "--max-total-size", type=_size, metavar="SIZE", help="stop loading past this in all (default 8G)"
    )
    group.add_argument("--max-rows", type=_count, metavar="N", help="rows of one table file (default 1,000,000)")


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword options for ``load_inputs`` from the parsed arguments (only what was given)."""
    options: dict[str, Any] = {}
    if args.include:
        options["include"] = tuple(args.include)
    if args.exclude:
        options["exclude"] = tuple(args.exclude)
    if args.no_gitignore:
        options["gitignore"] = False
    if args.no_default_excludes:
        options["skip_dirs"] = ()
    if args.follow_symlinks:
        options["follow_symlinks"] = True
    if args.no_notebook_outputs:
        options["notebook_outputs"] = False
    if args.encoding:
        options["fallback_encoding"] = args.encoding
    for arg, key in (
        ("max_file_size", "max_file_bytes"),
        ("max_decompressed", "max_decompressed_bytes"),
        ("max_total_size", "max_total_bytes"),
        ("max_rows", "max_rows"),
    ):
        value = getattr(args, arg)
        if value is not None:
            options[key] = value
    return options
