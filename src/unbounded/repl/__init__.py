"""REPL implementations behind one protocol: ``process`` (default, isolated) and ``inprocess`` (trusted)."""

from __future__ import annotations

from typing import Any

from .base import REPL, Limits, SubCallHandler, VariableError
from .cell import CellResult
from .namespace import RESERVED, ToolSpec, tool_spec

REPL_KINDS = ("process", "inprocess")


def make_repl(kind: str | Any = "process", limits: Limits | None = None) -> REPL:
    """A fresh REPL of ``kind`` (or a factory/instance the caller passes)."""
    if not isinstance(kind, str):
        return kind() if callable(kind) and not hasattr(kind, "run") else kind
    if kind == "process":
        from .process import ProcessREPL

        return ProcessREPL(limits)
    if kind == "inprocess":
        from .inprocess import InProcessREPL

        return InProcessREPL(limits)
    raise ValueError(f"unknown repl {kind!r}: use one of {', '.join(REPL_KINDS)}")


__all__ = [
    "REPL",
    "REPL_KINDS",
    "RESERVED",
    "CellResult",
    "Limits",
    "SubCallHandler",
    "ToolSpec",
    "VariableError",
    "make_repl",
    "tool_spec",
]
