"""The trusted, fast REPL: model code runs in the host process, in a thread.

Print output is captured per cell through a context variable read by one proxy installed on
``sys.stdout``/``sys.stderr``, so other threads' output is not swapped away. A cell past its time
limit gets an asynchronous exception; one that ignores it is abandoned (threads cannot be killed)
and the namespace rebuilt. Offers no isolation: use only for code you trust.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ..errors import REPLError
from .base import CellResult, Limits, Snapshot, SubCallHandler, ToolSpec, VariableError
from .cell import CappedWriter, CellInterrupted, run_cell
from .namespace import NamespaceState, build_namespace

_current_sink: contextvars.ContextVar[CappedWriter | None] = contextvars.ContextVar("unbounded_sink", default=None)
_install_lock = threading.Lock()


class _RoutingStream:
    """Stands in for sys.stdout/sys.stderr: writes go to the cell's sink when one is active."""

    def __init__(self, fallback: TextIO):
        self._fallback = fallback

    def write(self, s: str) -> int:
        sink = _current_sink.get()
        if sink is not None:
            return sink.write(s)
        return self._fallback.write(s)

    def flush(self) -> None:
        if _current_sink.get() is None:
            self._fallback.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


def _install_routing() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _RoutingStream):
            sys.stdout = _RoutingStream(sys.stdout)  # type: ignore[assignment]
        if not isinstance(sys.stderr, _RoutingStream):
            sys.stderr = _RoutingStream(sys.stderr)  # type: ignore[assignment]


def _raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))


class _Timeout(CellInterrupted):
    def __init__(self) -> None:
        super().__init__("cell ran past its time limit and was stopped; variables defined so far are kept")


class _PausedTime:
    """How long a cell has spent waiting on sub-calls (several threads of one cell may wait at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting = 0
        self._since = 0.0
        self._total = 0.0

    def reset(self) -> None:
        with self._lock:
            self._waiting, self._total = 0, 0.0

    def pause(self) -> None:
        with self._lock:
            if self._waiting == 0:
                self._since = time.monotonic()
            self._waiting += 1

    def resume(self) -> None:
        with self._lock:
            self._waiting -= 1
            if self._waiting == 0:
                self._total += time.monotonic() - self._since

    def total(self) -> float:
        with self._lock:
            ongoing = time.monotonic() - self._since if self._waiting else 0.0
            return self._total + ongoing


class _CellRunner:
    """The thread that runs one REPL's cells, one after another (one thread per cell would cost a
    thread start and its scheduling delay on every turn). A cell stuck past its limit takes the
    thread with it: the runner is abandoned and the next cell gets a new one."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self.usable = True
        self._thread = threading.Thread(target=self._loop, name="unbounded-cells", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                job = self._jobs.get()
                if job is None:
                    return
                job()
            except BaseException:
                continue

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def abandon(self) -> None:
        self.usable = False
        self._jobs.put(None)  # it exits if the stuck cell ever returns

    def stop(self) -> None:
        self.usable = False
        self._jobs.put(None)


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


async def _wait(done: asyncio.Future[None], timeout: float | None) -> bool:
    """Whether the cell finished within ``timeout`` seconds (None: no limit)."""
    if done.done():
        return True
    try:
        async with asyncio.timeout(timeout):
            await asyncio.shield(done)
    except TimeoutError:
        return False
    return True


class InProcessREPL:
    kind = "inprocess"

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.warnings: list[str] = []
        self._runner: _CellRunner | None = None
        self._clock = _PausedTime()
        self.state: NamespaceState | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handler: SubCallHandler | None = None
        self._cell_id: str | None = None
        self._context: Any = None
        self._tools: dict[str, str] = {}
        self._sub_calls = True
        self._counter = 0
        self._lock = asyncio.Lock()

    async def start(
        self, context: Any, handler: SubCallHandler, tools: Sequence[ToolSpec] = (), *, sub_calls: bool = True
    ) -> None:
        _install_routing()
        self._loop = asyncio.get_running_loop()
        self._handler = handler
        self._context, self._sub_calls = context, sub_calls
        self._tools = {t.name: t.doc for t in tools}
        self.state = build_namespace(context, self._call, self._tools, sub_calls=sub_calls)

    def _call(self, kind: str, payload: dict[str, Any]) -> Any:
        from .namespace import SubCallError

        assert self._loop is not None and self._handler is not None
        fut = asyncio.run_coroutine_threadsafe(self._handler(kind, payload, self._cell_id), self._loop)
        self._clock.pause()
        try:
            return fut.result()
        except BaseException as exc:
            if isinstance(exc, CellInterrupted | KeyboardInterrupt):
                fut.cancel()
                raise
            raise SubCallError(str(exc) or type(exc).__name__) from None
        finally:
            self._clock.resume()

    async def run(self, code: str, *, cell_id: str | None = None) -> CellResult:
        assert self.state is not None
        async with self._lock:
            self._counter += 1
            self._cell_id = cell_id
            name = f"<cell-{self._counter}>"
            out = CappedWriter(self.limits.max_output_chars)
            state = self.state
            loop = asyncio.get_running_loop()
            done: asyncio.Future[None] = loop.create_future()
            box: dict[str, Any] = {}

            def target() -> None:
                token = _current_sink.set(out)
                box["tid"] = threading.get_ident()
                try:
                    box["result"] = CellResult.from_dict(run_cell(state, code, name, out))
                except BaseException as exc:  # an async exception that landed outside run_cell's try
                    box["result"] = CellResult(error=str(exc) or type(exc).__name__, timed_out=True)
                finally:
                    _current_sink.reset(token)
                    with contextlib.suppress(RuntimeError):  # the loop may be gone (an abandoned cell)
                        loop.call_soon_threadsafe(_settle, done)

            runner = self._runner if self._runner is not None and self._runner.usable else _CellRunner()
            self._runner = runner
            runner.submit(target)
            timeout = self.limits.cell_timeout
            self._clock.reset()
            try:
                try:
                    finished = await _wait(done, timeout)
                    # The time limit is for the cell's own code: time spent waiting on sub-calls is added back.
                    granted = 0.0
                    while not finished and timeout is not None and self._clock.total() > granted + 0.01:
                        extra = self._clock.total() - granted
                        granted += extra
                        finished = await _wait(done, extra)
                except asyncio.CancelledError:
                    if "tid" in box and not done.done():  # the run was cancelled: stop the cell too
                        _raise_in_thread(box["tid"], _Timeout)
                    raise
                if not finished and "tid" in box:
                    _raise_in_thread(box["tid"], _Timeout)
                    finished = await _wait(done, self.limits.kill_grace)
                if not finished:
                    # The thread ignores interrupts (e.g. stuck in C code): abandon it, start afresh.
                    runner.abandon()
                    self._runner = None
                    self.state = build_namespace(self._context, self._call, self._tools, sub_calls=self._sub_calls)
                    return CellResult(
                        stdout=out.getvalue(),
                        stdout_total=out.total,
                        error="cell did not stop after its time limit; the namespace was reset and ALL variables were lost",
                        timed_out=True,
                        state_lost=True,
                    )
            finally:
                self._cell_id = None
            result: CellResult = box["result"]
            result.stdout = out.getvalue()
            result.stdout_total = out.total
            return result

    async def get_var(self, name: str) -> Any:
        assert self.state is not None
        if name not in self.state.namespace:
            raise VariableError(f"no variable named {name!r}")
        return self.state.namespace[name]

    async def set_var(self, name: str, value: Any) -> None:
        assert self.state is not None
        self.state.namespace[name] = value

    async def snapshot(self) -> Snapshot:
        from .snapshot import dump_namespace

        assert self.state is not None
        value = dump_namespace(self.state)
        return Snapshot(value["data"], value["dropped"], value["names"])

    async def restore(self, data: str) -> list[str]:
        from .snapshot import load_namespace

        assert self.state is not None
        try:
            return load_namespace(self.state, data)
        except Exception as exc:
            raise REPLError(f"cannot restore the variables: {exc}") from exc

    async def close(self) -> None:
        self.state = None
        if self._runner is not None:
            self._runner.stop()
            self._runner = None
