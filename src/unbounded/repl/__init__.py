"""REPL implementations behind one protocol: ``process`` (default, isolated) and ``inprocess`` (trusted)."""

from __future__ import annotations

from .._lazy import TYPE_CHECKING, lazy_exports

if TYPE_CHECKING:
    from typing import Any

    from .base import REPL, CellResult, Limits, SubCallHandler, ToolSpec, VariableError, tool_spec
    from .namespace import RESERVED

REPL_KINDS = ("process", "inprocess")

# Lazy, because the REPL worker imports this package: it must not pull in ``base`` (dataclasses,
# typing), which would cost the worker resident memory for nothing.
_EXPORTS = {
    "REPL": ".base",
    "CellResult": ".base",
    "Limits": ".base",
    "SubCallHandler": ".base",
    "ToolSpec": ".base",
    "VariableError": ".base",
    "tool_spec": ".base",
    "RESERVED": ".namespace",
}
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


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
