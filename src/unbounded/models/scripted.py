"""A deterministic model for tests: replies come from a list or from a function of the messages."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from .base import Completion, Delta, LMBase, Message, Usage

Reply = str | Completion
ReplyFn = Callable[[list[Message]], Reply | Awaitable[Reply]]


class ScriptedLM(LMBase):
    """A model whose replies are scripted.

    ``replies`` is a list (consumed in order; when exhausted the last reply repeats, or
    ``ScriptExhausted`` is raised with ``repeat_last=False``) or a function of the messages,
    sync or async. A reply may be a string or a full ``Completion``.

    ``latency`` sleeps that many seconds per call (asyncio sleep, so calls overlap).
    Usage per call: given by ``usage_fn(messages, text)``, else input tokens are the characters
    of all messages // 4 and output tokens the reply's characters // 4 (at least 1).
    ``calls`` records every request (a list of message lists) for assertions.

    ``stream_chunk``: when set, the model streams (``abilities.streaming``): ``astream`` yields the
    reply in pieces of that many characters, sleeping ``delta_latency`` seconds before each, then
    the completion. Closing the stream early stops it (``closed_streams`` counts those).
    """

    def __init__(
        self,
        replies: Sequence[Reply] | ReplyFn,
        *,
        name: str = "scripted",
        latency: float = 0.0,
        max_concurrency: int = 1_000_000,
        repeat_last: bool = True,
        price: tuple[float, float, float] | None = (0.0, 0.0, 0.0),
        usage_fn: Callable[[list[Message], str], Usage] | None = None,
        context_window: int | None = None,
        stream_chunk: int | None = None,
        delta_latency: float = 0.0,
    ) -> None:
        if stream_chunk is not None and stream_chunk < 1:
            raise ValueError(f"stream_chunk must be at least 1 character, got {stream_chunk}")
        self.name = name
        self.stream_chunk = stream_chunk
        self.delta_latency = delta_latency
        # a subclass may declare its own abilities as a class attribute; streaming follows stream_chunk
        self.abilities = dataclasses.replace(type(self).abilities, streaming=stream_chunk is not None)
        self.closed_streams = 0
        self.latency = latency
        self.max_concurrency = max_concurrency
        self.context_window = context_window
        self._fn: ReplyFn | None = replies if callable(replies) else None
        self._replies: list[Reply] = [] if callable(replies) else list(replies)
        self._index = 0
        self._repeat_last = repeat_last
        self._price = price
        self._usage_fn = usage_fn
        self.calls: list[list[Message]] = []
        self.options: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def price(self) -> tuple[float, float, float] | None:
        return self._price

    async def _next_reply(self, messages: list[Message]) -> Reply:
        if self._fn is not None:
            r = self._fn(messages)
            if inspect.isawaitable(r):
                r = await r
            return r
        if self._index < len(self._replies):
            r = self._replies[self._index]
            self._index += 1
            return r
        if self._repeat_last and self._replies:
            return self._replies[-1]
        raise ScriptExhausted(f"ScriptedLM {self.name!r} has no reply left (had {len(self._replies)})")

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        msgs = list(messages)
        self.calls.append(msgs)
        self.options.append(dict(opts))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            reply = await self._next_reply(msgs)
        finally:
            self.in_flight -= 1
        if isinstance(reply, Completion):
            return reply
        text = str(reply)
        if self._usage_fn is not None:
            usage = self._usage_fn(msgs, text)
        else:
            usage = Usage(
                calls=1,
                input_tokens=sum(len(m.content) for m in msgs) // 4,
                output_tokens=max(1, len(text) // 4),
            )
        usage.calls = 1
        usage.cost_usd = self.cost(usage)
        return Completion(text=text, usage=usage, model=self.name, finish_reason="stop")

    async def astream(self, messages: Sequence[Message], **opts: Any) -> AsyncIterator[Delta]:
        completion = await self.complete(messages, **opts)
        if self.stream_chunk is None:
            yield Delta(completion.text, completion)
            return
        text, size = completion.text, self.stream_chunk
        finished = False
        try:
            for start in range(0, len(text), size):
                if self.delta_latency:
                    await asyncio.sleep(self.delta_latency)
                yield Delta(text[start : start + size])
            finished = True
            yield Delta("", completion)
        finally:
            if not finished:
                self.closed_streams += 1


class ScriptExhausted(RuntimeError):
    """A list-scripted model was called more times than it has replies."""


def create(rest: str, options: dict[str, Any]) -> ScriptedLM:
    """``scripted/<file.json>``: replies from a JSON list of strings (for testing pipelines and the CLI).

    Option ``latency`` (seconds) is honoured.
    """
    import json
    from pathlib import Path

    from ..errors import ConfigError

    path = Path(rest)
    try:
        replies = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"scripted model: cannot read a JSON list of replies from {rest}: {exc}") from exc
    if not isinstance(replies, list) or not all(isinstance(r, str) for r in replies):
        raise ConfigError(f"scripted model: {rest} must hold a JSON list of strings")
    return ScriptedLM(replies, name=f"scripted/{rest}", latency=float(options.get("latency", 0.0)))
