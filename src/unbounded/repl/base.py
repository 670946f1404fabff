"""The REPL protocol every implementation follows, and the limits they share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .cell import CellResult
from .namespace import ToolSpec

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


class REPL(Protocol):
    """start → run(code)… → get/set variables → close."""

    kind: str

    async def start(
        self, context: Any, handler: SubCallHandler, tools: Sequence[ToolSpec] = (), *, sub_calls: bool = True
    ) -> None: ...

    async def run(self, code: str, *, cell_id: str | None = None) -> CellResult: ...

    async def get_var(self, name: str) -> Any: ...

    async def set_var(self, name: str, value: Any) -> None: ...

    async def close(self) -> None: ...


class VariableError(LookupError):
    """get_var of a name the namespace does not hold."""
