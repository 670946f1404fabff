"""The base of every provider backend: one ``complete`` for all of them.

A call is: build the provider's request from the messages and options, send it as one attempt,
parse the reply into a ``Completion`` (raising ``AttemptError`` for what went wrong), and let the
shared policy (``retry.call_with_retries``) retry what can be retried. A backend module supplies
only its wire format: ``build_request``, ``_send``, ``_parse`` and, where it holds an SDK client,
``_make_client``/``_close_client`` (one client per event loop, see ``sdk.PerLoop``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict, Unpack

from .base import Abilities, Completion, LMBase, Message, as_messages
from .retry import AttemptError, RetryPolicy, call_with_retries
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
        self.abilities = Abilities(small=looks_small(model) if small is None else bool(small))
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

    def classify(self, exc: BaseException) -> AttemptError | None:
        """What an exception from ``_send`` means (None: not a call failure, let it propagate)."""
        return classify_exception(exc)

    def _make_client(self) -> Any:
        return None

    async def _close_client(self, client: Any) -> None:
        await client.close()
