"""A run on a task of its own, so a response can wait for it, stream it or drop it.

The task is the server's, not the request's: a client that goes away cancels it (``cancel``), and
cancelling it closes the run's event stream, which cancels the run — sub-calls stopped, the REPL
worker killed, the ledger settled, the trace closed ``interrupted`` — all before the task ends,
whatever cancellation the web framework applies to the request itself. The run holds a gate slot
from its start to its end, is bounded by the wall clock, and is counted in the metrics once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..errors import ConfigError, ContextError, EmptyContextError, UnboundedError
from ..result import RLMResult
from ..trace import Event
from .errors import BadRequest, Internal, PayloadTooLarge, RunTimeout, ServeError
from .gate import RunGate, Ticket
from .metrics import Metrics

log = logging.getLogger("unbounded.serve")

_DONE = object()

#: A run's source: an async iterator of the run's events, ending with the ``result`` event.
Source = Callable[[], AsyncIterator[Event]]


class RunHandle:
    def __init__(
        self,
        source: Source,
        *,
        gate: RunGate,
        ticket: Ticket,
        metrics: Metrics,
        wall_clock: float,
        collect_events: bool = True,
        trace_id: str | None = None,
    ) -> None:
        self.id = os.urandom(12).hex()
        self.trace_id = trace_id
        self._source = source
        self._gate = gate
        self._ticket = ticket
        self._metrics = metrics
        self._wall_clock = wall_clock
        self._collect = collect_events
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.result: RLMResult | None = None
        self.failure: ServeError | None = None
        self.cancelled = False
        self.admitted = time.monotonic()
        self.created = int(time.time())
        self.started: float | None = None
        self.finished: float | None = None
        self._done = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._drive(), name=f"unbounded-run-{self.id}")

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def queued_seconds(self) -> float:
        return (self.started or self.finished or time.monotonic()) - self.admitted

    @property
    def run_seconds(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    def cancel(self) -> None:
        """Stop the run (a client that went away); returns at once, the task finishes the cleanup."""
        if not self.task.done():
            self.task.cancel()

    async def wait(self) -> None:
        await self._done.wait()

    async def events(self) -> AsyncIterator[Event]:
        """The run's events as they come (not the final ``result``), until the run ends."""
        while True:
            item = await self._queue.get()
            if item is _DONE:
                return
            yield item

    async def next_event(self, timeout: float) -> Event | None:
        """The next event, or None after ``timeout`` seconds without one; ``StopAsyncIteration`` at the end."""
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if item is _DONE:
            self._queue.put_nowait(_DONE)  # later readers see the end too
            raise StopAsyncIteration
        return item

    async def _drive(self) -> None:
        failure_kind: str | None = None
        try:
            await self._ticket.wait()
            self.started = time.monotonic()
            async with asyncio.timeout(self._wall_clock):
                async with contextlib.aclosing(self._source()) as stream:
                    async for event in stream:
                        if event.type == "result":
                            self.result = event.data["result"]
                        elif self._collect:
                            self._queue.put_nowait(event)
        except asyncio.CancelledError:
            self.cancelled = True
            failure_kind = "cancelled"
        except TimeoutError:
            self.failure = RunTimeout(
                f"the run passed this server's wall clock of {self._wall_clock:.0f} s and was stopped; its trace is "
                "kept. Ask a narrower question or a smaller budget.max_seconds"
            )
        except ServeError as exc:
            self.failure = exc
        except Exception as exc:  # never let a run take the server down
            self.failure = as_serve_error(exc)
        finally:
            self.finished = time.monotonic()
            self._ticket.release()
            if self.started is not None:
                self._gate.observe(self.run_seconds)
            if self.failure is not None:
                failure_kind = self.failure.code or type(self.failure).__name__
            self._metrics.settle(self.result, seconds=self.run_seconds, waited=self.queued_seconds,
                                 failure=failure_kind)  # fmt: skip
            self._queue.put_nowait(_DONE)
            self._done.set()


def as_serve_error(exc: BaseException) -> ServeError:
    """A library failure as the request's error: bad input is the caller's (4xx), the rest is ours (500)."""
    if isinstance(exc, ServeError):
        return exc
    if isinstance(exc, EmptyContextError):
        return BadRequest(str(exc), code="empty_context")
    if isinstance(exc, ContextError):
        from ..loaders import InputTooLargeError

        if isinstance(exc, InputTooLargeError):
            return PayloadTooLarge(str(exc), code="context_too_large")
        return BadRequest(str(exc), code="invalid_context")
    if isinstance(exc, ConfigError):
        return BadRequest(str(exc), code="bad_configuration")
    if isinstance(exc, ValueError) and not isinstance(exc, UnboundedError):
        return BadRequest(str(exc))
    ref = os.urandom(4).hex()
    log.error("internal error %s", ref, exc_info=(type(exc), exc, exc.__traceback__))
    return Internal(f"the server failed on this request (reference {ref}; the server's log has the details)")
