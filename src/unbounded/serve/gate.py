"""At most ``max_concurrent`` runs at once and ``max_queue`` waiting; beyond that, 429 at once.

``admit()`` is synchronous: a request learns before its response starts whether it has a place. The
``Ticket`` it gets waits for a slot (``await ticket.wait()``) and gives it back (``release``), also
when the run is cancelled while still queued. ``Retry-After`` is estimated from recent run times.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from .errors import Overloaded

#: Weight of the newest run in the running mean of run times.
EWMA = 0.2


@dataclass
class Ticket:
    gate: RunGate
    state: str = "queued"  # queued → running → done
    _event: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self) -> None:
        """Until this ticket holds a run slot."""
        if self.state == "queued":
            try:
                await self._event.wait()
            except BaseException:
                self.release()
                raise

    def release(self) -> None:
        self.gate._release(self)


class RunGate:
    def __init__(self, max_concurrent: int, max_queue: int) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.running = 0
        self._waiting: list[Ticket] = []
        self.mean_seconds = 1.0

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def admit(self) -> Ticket:
        ticket = Ticket(self)
        if self.running < self.max_concurrent and not self._waiting:
            self._start(ticket)
            return ticket
        if len(self._waiting) >= self.max_queue:
            raise Overloaded(
                f"the server is busy: {self.running} run(s) in progress and {self.queued} waiting (the limits are "
                f"--max-concurrent {self.max_concurrent} and --max-queue {self.max_queue}); try again after "
                f"{self.retry_after()} s",
                retry_after=self.retry_after(),
            )
        self._waiting.append(ticket)
        return ticket

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the queue ahead, drained at the recent pace."""
        rounds = (self.queued + 1) / max(1, self.max_concurrent)
        return max(1, math.ceil(self.mean_seconds * rounds))

    def observe(self, seconds: float) -> None:
        self.mean_seconds = (1 - EWMA) * self.mean_seconds + EWMA * max(0.0, seconds)

    def _start(self, ticket: Ticket) -> None:
        ticket.state = "running"
        self.running += 1
        ticket._event.set()

    def _release(self, ticket: Ticket) -> None:
        if ticket.state == "queued":
            ticket.state = "done"
            if ticket in self._waiting:
                self._waiting.remove(ticket)
            return
        if ticket.state == "running":
            ticket.state = "done"
            self.running -= 1
            while self._waiting and self.running < self.max_concurrent:
                self._start(self._waiting.pop(0))
