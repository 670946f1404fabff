"""Registered contexts: each loaded once into a warm session (a live REPL), owned by one key.

Questions against a context reuse its session (one at a time: the session serialises them), so the
context is never loaded or sent to a worker again. The registry holds at most ``max_contexts`` and
``cap_chars`` characters of them; making room evicts the least recently used idle ones (their
workers stop). A context in use is never evicted; one deleted while in use closes when its question
ends. Another key's context is reported as missing, the same as one that does not exist.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from ..session import Session
from .errors import NotFound, Overloaded, PayloadTooLarge


@dataclass
class ContextEntry:
    id: str
    owner: str
    session: Session
    model: str
    chars: int
    summary: dict[str, Any]
    trace_id: str
    name: str | None = None
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    questions: int = 0
    busy: int = 0
    closing: bool = False
    #: The session's trace writer, closed with it.
    writer: Any = None

    async def close(self) -> None:
        """Stop the session's worker and close its trace."""
        try:
            await self.session.aclose()
        except Exception:  # a worker that is already gone
            pass
        if self.writer is not None:
            self.writer.close()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "context",
            "created": int(self.created),
            "name": self.name,
            "model": f"rlm/{self.model}",
            "chars": self.chars,
            "questions": self.questions,
            "last_used": int(self.last_used),
            "trace_id": self.trace_id,
            **self.summary,
        }


class ContextRegistry:
    def __init__(self, cap_chars: int, max_contexts: int) -> None:
        self.cap_chars = cap_chars
        self.max_contexts = max_contexts
        self._entries: OrderedDict[str, ContextEntry] = OrderedDict()
        self._pending_chars = 0
        self._pending = 0
        self.evicted = 0

    @property
    def count(self) -> int:
        return len(self._entries)

    @property
    def chars(self) -> int:
        return sum(e.chars for e in self._entries.values())

    # -- making room ----------------------------------------------------------------------
    def make_room(self, chars: int) -> list[ContextEntry]:
        """Reserve room for a context of ``chars``; returns the idle contexts evicted for it (to close).

        ``PayloadTooLarge`` when it could never fit; ``Overloaded`` when the contexts that would have to
        go are all in use.
        """
        if chars > self.cap_chars:
            raise PayloadTooLarge(
                f"this context holds {chars:,} characters, more than the server's context memory cap of "
                f"{self.cap_chars:,} (--context-memory-mb): ask about it in one request with paths instead, "
                "or in smaller pieces",
                code="context_too_large",
            )
        victims: list[ContextEntry] = []
        used, count = self.chars + self._pending_chars, self.count + self._pending
        for entry in list(self._entries.values()):  # least recently used first
            if used + chars <= self.cap_chars and count + 1 <= self.max_contexts:
                break
            if entry.busy or entry.closing:
                continue
            victims.append(entry)
            used -= entry.chars
            count -= 1
        if used + chars > self.cap_chars or count + 1 > self.max_contexts:
            raise Overloaded(
                "no room for another context: the registered contexts that would have to be evicted are answering "
                "questions now; try again shortly, or DELETE contexts you no longer need",
                retry_after=5,
                code="contexts_full",
            )
        for entry in victims:
            self._entries.pop(entry.id, None)
            entry.closing = True
        self.evicted += len(victims)
        self._pending_chars += chars
        self._pending += 1
        return victims

    def release_room(self, chars: int) -> None:
        self._pending_chars -= chars
        self._pending -= 1

    def add(self, entry: ContextEntry) -> None:
        """A context whose room ``make_room`` reserved, now loaded."""
        self.release_room(entry.chars)
        self._entries[entry.id] = entry

    # -- use ------------------------------------------------------------------------------
    def get(self, owner: str, context_id: str) -> ContextEntry:
        entry = self._entries.get(context_id)
        if entry is None or entry.owner != owner or entry.closing:
            raise NotFound(
                f"no context {context_id!r} for this key (it was deleted, evicted to make room, or never registered "
                "here): register it again with POST /v1/contexts",
                param="context_id",
                code="context_not_found",
            )
        return entry

    @asynccontextmanager
    async def use(self, owner: str, context_id: str) -> AsyncIterator[ContextEntry]:
        entry = self.get(owner, context_id)
        entry.busy += 1
        self._entries.move_to_end(entry.id)
        try:
            yield entry
        finally:
            entry.busy -= 1
            entry.questions += 1
            entry.last_used = time.time()
            if entry.closing and not entry.busy:
                await _close(entry)

    def listing(self, owner: str) -> list[ContextEntry]:
        return [e for e in self._entries.values() if e.owner == owner]

    async def delete(self, owner: str, context_id: str) -> ContextEntry:
        entry = self.get(owner, context_id)
        self._entries.pop(entry.id, None)
        entry.closing = True
        if not entry.busy:
            await _close(entry)
        return entry

    async def aclose(self) -> None:
        entries = list(self._entries.values())
        self._entries.clear()
        for entry in entries:
            entry.closing = True
        await asyncio.gather(*(_close(e) for e in entries), return_exceptions=True)


async def _close(entry: ContextEntry) -> None:
    await entry.close()
