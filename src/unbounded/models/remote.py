"""The base of every provider backend: one ``complete`` and one ``astream`` for all of them.

A call is: build the provider's request from the messages and options, send it as one attempt,
parse the reply into a ``Completion`` (raising ``AttemptError`` for what went wrong), and let the
shared policy (``retry.call_with_retries``) retry what can be retried. A backend module supplies
only its wire format: ``build_request``, ``_send``, ``_parse``, ``_stream_events`` and, where it
holds an SDK client, ``_make_client``/``_close_client`` (one client per event loop, see ``sdk.PerLoop``).

A stream is the same request sent in the provider's streaming mode. ``_stream_events`` yields the
reply's text pieces and, last, the ``Completion`` (exact usage from the provider's final event);
it raises ``AttemptError`` for an empty reply or a stream that ended before its final event. Until
the first piece arrives the stream is an attempt like any other (retried on 429/5xx/timeouts,
empty replies billed and retried); after it, a failure is final (``retry.stream_failure``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from .base import Abilities, Completion, Delta, LMBase, Message, as_messages
from .retry import AttemptError, RetryPolicy, add_billed, call_with_retries, call_with_retries_billed, stream_failure
from .sdk import PerLoop
from .sdk_errors import classify_exception
from .traits import looks_small


class RemoteOptions(TypedDict, total=False):
    """What every provider backend's constructor takes besides its own options."""

    policy: RetryPolicy | None
    max_concurrency: int
    context_window: int | None
    price: tuple[float, float, float] | None
    small: bool | None


class RemoteLM(LMBase):
    """A model behind a provider's API. ``small`` (default: from the size in the model's name)
    declares that it needs the compact prompt style, e.g. ``ollama/qwen2.5-coder:1.5b``."""

    def __init__(self, model: str, *, name: str, default_max_tokens: int, **common: Unpack[RemoteOptions]) -> None:
        self.model = model
        self.name = name
        self.policy = common.get("policy") or RetryPolicy()
        self.max_concurrency = common.get("max_concurrency", 32)
        self.context_window = common.get("context_window")
        self.default_max_tokens = default_max_tokens
        small = common.get("small")
        self.abilities = Abilities(
            small=looks_small(model) if small is None else bool(small),
            streaming=self._streams(),
            structured_output=True,
        )
        self._price = common.get("price")
        self._clients: PerLoop[Any] = PerLoop(self._make_client)

    def price(self) -> tuple[float, float, float] | None:
        return self._price

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        msgs = as_messages(messages)
        request = self.build_request(msgs, **opts)
        client = self._clients.get()

        async def attempt() -> Completion:
            return self._parse(await self._send(client, request), opts)

        completion, attempts = await call_with_retries(attempt, self.policy, classify=self.classify, label=self.name)
        completion.extra["attempts"] = attempts
        return completion

    def _streams(self) -> bool:
        """Whether this backend supplies its wire format's stream (``_stream_events``)."""
        return type(self)._stream_events is not RemoteLM._stream_events

    async def astream(self, messages: Sequence[Message], **opts: Any) -> AsyncIterator[Delta]:
        if not self._streams():
            completion = await self.complete(messages, **opts)
            yield Delta(completion.text, completion)
            return
        msgs = as_messages(messages)
        request = self.build_request(msgs, **opts)
        client = self._clients.get()

        async def attempt() -> _Opened:
            events = self._stream_events(client, request, opts)
            try:
                first = await anext(events)
            except StopAsyncIteration:
                await events.aclose()
                raise AttemptError("malformed", "the stream ended without a reply", True) from None
            except BaseException:
                await events.aclose()
                raise
            return _Opened(events, first)

        opened, attempts, billed = await call_with_retries_billed(
            attempt, self.policy, classify=self.classify, label=self.name
        )
        streamed = 0
        async with contextlib.aclosing(opened.events) as events:
            item = opened.first
            while not isinstance(item, Completion):
                streamed += len(item)
                yield Delta(item)
                try:
                    item = await anext(events)
                except StopAsyncIteration:
                    err = AttemptError("malformed", "the stream ended without its final event", True)
                    raise stream_failure(
                        err, label=self.name, attempts=attempts, streamed_chars=streamed, billed=billed
                    ) from None
                except AttemptError as exc:
                    raise stream_failure(
                        exc, label=self.name, attempts=attempts, streamed_chars=streamed, billed=billed
                    ) from exc
                except Exception as exc:
                    classified = self.classify(exc)
                    if classified is None:
                        raise
                    raise stream_failure(
                        classified, label=self.name, attempts=attempts, streamed_chars=streamed, billed=billed
                    ) from exc
            add_billed(item, billed)
            item.extra["attempts"] = attempts
            yield Delta("", item)

    async def aclose(self) -> None:
        client = self._clients.pop_current()
        if client is not None:
            await self._close_client(client)

    # -- what each provider supplies -------------------------------------------------------------------
    def build_request(self, messages: Sequence[Message], **opts: Any) -> Any:
        """The provider's request for these messages and options (public for tests and debugging)."""
        raise NotImplementedError

    async def _send(self, client: Any, request: Any) -> Any:
        """One attempt: the raw response, or whatever the SDK raises."""
        raise NotImplementedError

    def _parse(self, response: Any, opts: dict[str, Any]) -> Completion:
        """The response as a Completion; raises ``AttemptError`` for a malformed or empty one."""
        raise NotImplementedError

    def _stream_events(self, client: Any, request: Any, opts: dict[str, Any]) -> AsyncGenerator[str | Completion, None]:
        """One streamed attempt: the text pieces as they arrive (never empty ones), then the Completion.

        Closing the iterator closes the provider's stream. Raises ``AttemptError`` for an empty reply
        (``billed``) or a stream that ended before the provider's final event.
        """
        raise NotImplementedError

    def classify(self, exc: BaseException) -> AttemptError | None:
        """What an exception from ``_send`` means (None: not a call failure, let it propagate)."""
        return classify_exception(exc)

    def _make_client(self) -> Any:
        return None

    async def _close_client(self, client: Any) -> None:
        await client.close()


@dataclass
class _Opened:
    """A stream whose first event has arrived: the events still to read, and that first one."""

    events: AsyncGenerator[str | Completion, None]
    first: str | Completion
