"""Exit codes of every ``unbounded`` command (documented in the README)."""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_ERROR = 1  # the run failed: a model or REPL error
EXIT_USAGE = 2  # bad arguments
EXIT_CONTEXT = 3  # a missing or unreadable input
EXIT_EMPTY = 4  # the input holds no text
EXIT_MODEL = 5  # an unknown model or a bad configuration
EXIT_BUDGET = 6  # a budget limit ended the run
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM


def fail(code: int, message: str, *, prog: str = "unbounded") -> int:
    """Print ``message`` to stderr as the command's complaint and return ``code``."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code
