"""REPL implementations behind one protocol: ``process`` (default, isolated) and ``inprocess`` (trusted)."""

from __future__ import annotations

from .._lazy import TYPE_CHECKING, lazy_exports

if TYPE_CHECKING:
    from collections.abc import Callable

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


def make_repl(kind: str | Callable[[], REPL] = "process", limits: Limits | None = None) -> REPL:
    """A fresh REPL: of a kind named ``"process"`` or ``"inprocess"``, or made by a zero-argument factory."""
    return repl_factory(kind, limits)()


def repl_factory(kind: str | Callable[[], REPL], limits: Limits | None = None) -> Callable[[], REPL]:
    """What makes a new REPL for each RLM of a run (every RLM in the recursion tree needs its own).

    ``kind`` is a name or a zero-argument factory (a REPL class, a function); a REPL *instance* is
    refused with a ``ConfigError``, because a child RLM would share its parent's namespace and wait
    on the parent's own running cell.
    """
    from .base import REPL

    if isinstance(kind, str):
        if kind == "process":
            from .process import ProcessREPL

            return lambda: ProcessREPL(limits)
        if kind == "inprocess":
            from .inprocess import InProcessREPL

            return lambda: InProcessREPL(limits)
        raise ValueError(f"unknown repl {kind!r}: use one of {', '.join(REPL_KINDS)}, or a factory")
    if not isinstance(kind, type) and isinstance(kind, REPL):
        from ..errors import ConfigError

        raise ConfigError(
            f"repl= got a REPL instance ({type(kind).__name__}); pass a kind name ('process', 'inprocess') or a "
            f"zero-argument factory such as {type(kind).__name__} or lambda: {type(kind).__name__}(...): every RLM "
            "in the recursion tree needs a REPL of its own"
        )
    if not callable(kind):
        raise TypeError(f"repl must be a kind name or a zero-argument factory, got {type(kind).__name__}")
    return kind


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
    "repl_factory",
    "tool_spec",
]
