"""A cell's host-side deadline that stops while the cell waits on sub-calls.

A cell's time limit bounds its own code. Time it spends waiting for the host to answer
``llm_query``/``llm_batch``/``rlm_query`` is the run's (its budget bounds that), so the deadline is
pushed back by exactly the time during which at least one sub-call of the cell was in flight.
"""

from __future__ import annotations

import asyncio


class CellDeadline:
    """Holds the ``asyncio.timeout`` of the running cell, if any, and stops it while sub-calls wait."""

    def __init__(self) -> None:
        self._timeout: asyncio.Timeout | None = None
        self._waiting = 0
        self._left: float | None = None

    def attach(self, timeout: asyncio.Timeout) -> None:
        self._timeout, self._waiting, self._left = timeout, 0, None

    def detach(self) -> None:
        self._timeout, self._waiting, self._left = None, 0, None

    def pause(self) -> None:
        self._waiting += 1
        if self._waiting == 1 and self._timeout is not None:
            when = self._timeout.when()
            if when is not None:
                self._left = max(0.0, when - asyncio.get_running_loop().time())
                self._timeout.reschedule(None)

    def resume(self) -> None:
        self._waiting = max(0, self._waiting - 1)
        if self._waiting == 0 and self._timeout is not None and self._left is not None:
            self._timeout.reschedule(asyncio.get_running_loop().time() + self._left)
            self._left = None
