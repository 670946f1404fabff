"""The REPL protocol every implementation follows, and the limits they share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import VariableError
from .namespace import RESERVED

__all__ = ["REPL", "CellResult", "Limits", "Snapshot", "SubCallHandler", "ToolSpec", "VariableError", "tool_spec"]

#: Serves a sub-call made by model code: ``await handler(kind, payload, cell_id)`` returns the value
#: (str for llm_query, list for batches, any JSON value for tools) or raises with a message for the model.
SubCallHandler = Callable[[str, dict[str, Any], str | None], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits for model code. ``None`` disables one.

    ``memory_bytes`` is headroom beyond what the loaded context occupies. ``cell_timeout`` is wall
    seconds per cell (interrupt first, keeping the namespace; a cell that ignores the interrupt for
    ``kill_grace`` more seconds is killed and the REPL restarted, losing its variables).

    The ``process`` REPL only: ``sandbox`` picks the confinement (``"auto"``: bubblewrap where it works,
    else util-linux ``unshare``, else none, with a warning; or name one of ``"bwrap"``, ``"unshare"``,
    ``"none"``, see ``unbounded.repl.sandbox``); ``allow_network`` opts model code into the network;
    ``max_processes`` caps processes and threads; ``max_file_bytes`` caps the size of any file the
    worker writes; ``max_frame_bytes`` caps one message from the worker.
    """

    cell_timeout: float | None = 120.0
    kill_grace: float = 3.0
    cpu_seconds: float | None = 300.0
    memory_bytes: int | None = 2 * 1024**3
    max_output_chars: int = 1_000_000
    max_processes: int | None = 256
    max_frame_bytes: int = 256 * 1024 * 1024
    max_file_bytes: int | None = 1024**3
    allow_network: bool = False
    sandbox: str = "auto"


@dataclass(slots=True)
class CellResult:
    """What running one cell produced. ``stdout`` is capped; ``stdout_total`` is the full size.

    The worker sends it as a plain dict (``to_dict`` / ``from_dict`` are the wire form) and never
    imports this module: ``dataclasses`` would cost it resident memory.
    """

    stdout: str = ""
    stdout_total: int = 0
    error: str | None = None
    final: str | None = None
    duration: float = 0.0
    timed_out: bool = False
    state_lost: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stdout": self.stdout,
            "stdout_total": self.stdout_total,
            "error": self.error,
            "final": self.final,
            "duration": self.duration,
            "timed_out": self.timed_out,
            "state_lost": self.state_lost,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CellResult:
        return cls(
            stdout=str(d.get("stdout", "")),
            stdout_total=int(d.get("stdout_total", 0)),
            error=d.get("error"),
            final=d.get("final"),
            duration=float(d.get("duration", 0.0)),
            timed_out=bool(d.get("timed_out", False)),
            state_lost=bool(d.get("state_lost", False)),
            notes=[str(n) for n in d.get("notes", [])],
        )


@dataclass(slots=True)
class ToolSpec:
    """A host callable offered to the model. ``signature`` and ``doc`` go into the system prompt."""

    name: str
    doc: str
    signature: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "doc": self.doc, "signature": self.signature}


def tool_spec(fn: Callable[..., Any], name: str | None = None) -> ToolSpec:
    import inspect

    name = name or fn.__name__
    if not name.isidentifier() or name in RESERVED:
        raise ValueError(f"tool name {name!r} must be a Python identifier and not one of {RESERVED}")
    try:
        sig = str(inspect.signature(fn, eval_str=True))
    except Exception:
        try:
            sig = str(inspect.signature(fn))
        except (TypeError, ValueError):
            sig = "(*args, **kwargs)"
    return ToolSpec(name, inspect.getdoc(fn) or "", sig)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A namespace's picklable variables (base64 of a pickle) and the names that could not be kept."""

    data: str
    dropped: list[str]
    names: list[str]


@runtime_checkable
class REPL(Protocol):
    """start → run(code)… → get/set variables → close. ``warnings`` lists what the trace should say
    about the REPL once it has started (e.g. a sandbox the OS refused)."""

    kind: str
    warnings: list[str]

    async def start(
        self, context: Any, handler: SubCallHandler, tools: Sequence[ToolSpec] = (), *, sub_calls: bool = True
    ) -> None: ...

    async def run(self, code: str, *, cell_id: str | None = None) -> CellResult: ...

    async def get_var(self, name: str) -> Any: ...

    async def set_var(self, name: str, value: Any) -> None: ...

    async def snapshot(self) -> Snapshot:
        """The user's variables that pickle (``data``: base64 text to hand back to ``restore``), and the
        names of those that do not (``dropped``). The REPL's own names and ``context`` are not kept."""
        ...

    async def restore(self, data: str) -> list[str]:
        """Put back the variables of a ``snapshot``; returns their names."""
        ...

    async def close(self) -> None: ...

