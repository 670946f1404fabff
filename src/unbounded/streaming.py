"""A run's events as an async stream (``RLM.astream``), and any async stream as a sync iterator.

``stream_events(start)`` runs ``start(listener)`` — a coroutine that emits events to ``listener``
and returns an ``RLMResult`` — as a task, and yields each event as it comes, then one ``result``
event carrying the result. When the consumer stops early (``break``, ``aclose``, a cancelled task),
the run is cancelled and awaited, so it closes its trace (``interrupted``), kills its REPL and
settles its ledger before the generator returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from .trace import Event, Listener

_DONE = object()


async def stream_events(start: Callable[[Listener], Awaitable[Any]]) -> AsyncIterator[Event]:
    events: asyncio.Queue[Any] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def listener(event: Event) -> None:
        # Events may come from other threads (the in-process REPL's cells): hand them to the loop.
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            events.put_nowait(event)
        else:
            loop.call_soon_threadsafe(events.put_nowait, event)

    task = asyncio.ensure_future(start(listener))
    task.add_done_callback(lambda _t: events.put_nowait(_DONE))
    try:
        while True:
            item = await events.get()
            if item is _DONE:
                break
            yield item
        while not events.empty():  # events that came after the task's last step
            item = events.get_nowait()
            if item is not _DONE:
                yield item
        result = task.result()  # the run's own exception, if it raised one
        yield Event("result", f"result-{id(result):x}", None, time.time(), {"result": result})
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def iterate_in_thread(make: Callable[[], AsyncIterator[Any]]) -> Iterator[Any]:
    """Drive an async iterator on an event loop in a thread of its own, yielding its items here.

    Closing this iterator (``break`` in a ``for`` loop) closes the async one, cancelling its work.
    """
    items: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()
    box: dict[str, Any] = {}

    async def pump() -> None:
        agen = make()
        box["task"] = asyncio.current_task()
        try:
            async for item in agen:
                items.put(("item", item))
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer
            items.put(("error", exc))
        finally:
            await agen.aclose()
            items.put(("end", None))

    def run() -> None:
        loop = asyncio.new_event_loop()
        box["loop"] = loop
        try:
            loop.run_until_complete(pump())
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="unbounded-stream", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        loop = box.get("loop")
        task = box.get("task")
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        thread.join()
