"""The one model protocol every backend implements, and the value types it speaks."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. ``role`` is ``system``, ``user`` or ``assistant``."""

    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


MessageLike = Message | Mapping[str, Any]


def as_messages(messages: Sequence[MessageLike] | str) -> list[Message]:
    """Normalise a prompt string, dicts or Messages into a list of Messages."""
    if isinstance(messages, str):
        return [Message("user", messages)]
    out: list[Message] = []
    for m in messages:
        if isinstance(m, Message):
            out.append(m)
        else:
            out.append(Message(str(m["role"]), str(m["content"])))
    return out


@dataclass(slots=True)
class Usage:
    """Token counts and cost of one or more calls. ``cost_usd`` is None when the price is unknown."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float | None = 0.0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_input_tokens += other.cached_input_tokens
        if self.cost_usd is None or other.cost_usd is None:
            self.cost_usd = None
        else:
            self.cost_usd += other.cost_usd

    @classmethod
    def sum(cls, usages: Iterable[Usage]) -> Usage:
        """One usage for many (unknown cost if any cost is unknown)."""
        total = cls()
        for u in usages:
            total.add(u)
        return total

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cost_usd": self.cost_usd,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Usage:
        return cls(
            calls=int(d.get("calls", 0)),
            input_tokens=int(d.get("input_tokens", 0)),
            output_tokens=int(d.get("output_tokens", 0)),
            cached_input_tokens=int(d.get("cached_input_tokens", 0)),
            cost_usd=d.get("cost_usd"),
        )


@dataclass(slots=True)
class Completion:
    """What a model call returns. ``usage.calls`` is 1 for a real call."""

    text: str
    usage: Usage
    model: str = ""
    finish_reason: str | None = None
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delta:
    """One piece of a streamed reply (``LMBase.astream``).

    ``text`` is the new text since the previous delta. The last delta of a stream has
    ``completion`` set: the whole ``Completion`` exactly as ``complete`` would have returned it (full
    text, the provider's exact usage, finish reason, extra). The texts of all deltas, joined, are
    ``completion.text``.
    """

    text: str
    completion: Completion | None = None


@runtime_checkable
class LM(Protocol):
    """A language model backend: the one protocol every model implements.

    ``name`` is the spec string that selects it (e.g. ``local/qwen2.5-coder-1.5b``).
    ``max_concurrency`` bounds how many calls run at once on this instance; the engine enforces it.
    ``context_window`` is the model's window in tokens (None if unknown).

    ``complete`` accepts the options ``max_tokens``, ``temperature``, ``stop``, ``seed`` and
    ``schema`` (a JSON-schema dict the reply should follow: the completion's text is then the JSON);
    a backend ignores what it cannot honour.

    Anything beyond this (a tokenizer, a price, slots, lazy loading, closing) is declared by
    subclassing :class:`LMBase` and setting :attr:`LMBase.abilities`; an object that only follows
    this protocol is used through :func:`full_lm`, which gives it the defaults (price unknown).
    """

    name: str
    max_concurrency: int
    context_window: int | None

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion: ...


@dataclass(frozen=True, slots=True)
class Abilities:
    """What a model declares it can do beyond ``complete`` (the engine reads flags, it never probes).

    ``tokenizer``: ``count_tokens`` returns exact prompt sizes (reservations use them).
    ``slots``: ``with_slot(name)`` gives the same model on a separate context (KV cache), so the
    root, sub-calls and child RLMs do not evict each other's prompt caches.
    ``lazy_load``: the model loads on first use; ``aload()`` loads it off the event loop.
    ``small``: a small model (a few billion parameters or fewer) that needs the compact prompt style.
    ``streaming``: ``astream`` yields the reply as it is generated (otherwise it yields the whole
    reply as one delta when ``complete`` returns).
    ``structured_output``: the ``schema`` option is sent to the model natively (a provider's JSON
    schema mode, a forced tool, a grammar), so the reply is JSON of that shape; otherwise ``schema``
    is ignored and only the caller's validation holds the model to it.
    """

    tokenizer: bool = False
    slots: bool = False
    lazy_load: bool = False
    small: bool = False
    streaming: bool = False
    structured_output: bool = False


class LMBase:
    """Base for backends: the protocol's attributes plus every optional ability, with defaults.

    A backend overrides what it has and declares it in ``abilities``. The defaults say "not
    available": no tokenizer, price unknown (``None``: a cost limit refuses such a model), one
    shared context for every slot, nothing to load or close.
    """

    name: str = "lm"
    max_concurrency: int = 32
    context_window: int | None = None
    #: Default output cap (tokens) used when the caller gives none; also the reservation size.
    default_max_tokens: int = 1024
    abilities: Abilities = Abilities()

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        raise NotImplementedError

    async def astream(self, messages: Sequence[Message], **opts: Any) -> AsyncIterator[Delta]:
        """The reply as it is generated: deltas of new text, the last one carrying the ``Completion``.

        This default, for models without ``abilities.streaming``, awaits ``complete`` and yields the
        whole text as one delta. Closing the iterator (or cancelling its consumer) cancels the call.
        """
        completion = await self.complete(messages, **opts)
        yield Delta(completion.text, completion)

    def count_tokens(self, messages: Sequence[Message]) -> int | None:
        """Exact input token count if the backend has a tokenizer; None otherwise."""
        return None

    def price(self) -> tuple[float, float, float] | None:
        """USD per million (input, output, cached input) tokens; None where unknown."""
        return None

    def cost(self, usage: Usage) -> float | None:
        p = self.price()
        if p is None:
            return None
        pin, pout, pcached = p
        fresh = max(usage.input_tokens - usage.cached_input_tokens, 0)
        return (fresh * pin + usage.cached_input_tokens * pcached + usage.output_tokens * pout) / 1e6

    def with_slot(self, slot: str) -> LMBase:
        """The same model on the named context; a model without ``abilities.slots`` has only one."""
        return self

    def fork_for_subcalls(self) -> LMBase:
        """The model to answer sub-calls on its own context (``with_slot("sub")``)."""
        return self.with_slot("sub")

    @property
    def loaded(self) -> bool:
        """False while a lazily loaded model (``abilities.lazy_load``) is not in memory yet."""
        return True

    def load(self) -> float:
        """Load now (blocking); returns the seconds it took."""
        return 0.0

    async def aload(self) -> float:
        """Load now without blocking the event loop; returns the seconds it took."""
        return 0.0

    async def aclose(self) -> None:
        """Release per-event-loop resources (HTTP clients); the model stays usable."""
        return None


class _Delegating(LMBase):
    """The protocol's three attributes read from ``inner``."""

    inner: Any

    @property  # type: ignore[override]
    def name(self) -> str:
        return self.inner.name

    @property  # type: ignore[override]
    def max_concurrency(self) -> int:
        return self.inner.max_concurrency

    @property  # type: ignore[override]
    def context_window(self) -> int | None:
        return self.inner.context_window


class WrappedLM(_Delegating):
    """Base for a layer around another model (a cache, a meter): every attribute and ability is the
    wrapped model's, forwarded here once, so no wrapper can drop one. Subclasses override ``complete``
    and, when they hold per-instance state that a slot twin must not share, ``rewrap``.

    ``astream`` forwards to the wrapped model's stream. A subclass that overrides ``complete`` but
    not ``astream`` (a meter that counts calls) has its streamed calls go through its ``complete``
    instead, as one delta, so a stream never slips past what the wrapper does to calls.
    """

    def __init__(self, inner: LMBase) -> None:
        self.inner = full_lm(inner)

    def rewrap(self, inner: LMBase) -> WrappedLM:
        """This wrapper around another model (a slot twin of the wrapped one)."""
        twin = copy.copy(self)
        twin.inner = inner
        return twin

    @property  # type: ignore[override]
    def default_max_tokens(self) -> int:
        return self.inner.default_max_tokens

    @property  # type: ignore[override]
    def abilities(self) -> Abilities:
        return self.inner.abilities

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        return await self.inner.complete(messages, **opts)

    async def astream(self, messages: Sequence[Message], **opts: Any) -> AsyncIterator[Delta]:
        if changes_complete_only(self, WrappedLM):
            completion = await self.complete(messages, **opts)
            yield Delta(completion.text, completion)
            return
        async with contextlib.aclosing(self.inner.astream(messages, **opts)) as stream:
            async for delta in stream:
                yield delta

    def count_tokens(self, messages: Sequence[Message]) -> int | None:
        return self.inner.count_tokens(messages)

    def price(self) -> tuple[float, float, float] | None:
        return self.inner.price()

    def cost(self, usage: Usage) -> float | None:
        return self.inner.cost(usage)

    def with_slot(self, slot: str) -> LMBase:
        twin = self.inner.with_slot(slot)
        return self if twin is self.inner else self.rewrap(twin)

    def fork_for_subcalls(self) -> LMBase:
        twin = self.inner.fork_for_subcalls()
        return self if twin is self.inner else self.rewrap(twin)

    @property
    def loaded(self) -> bool:
        return self.inner.loaded

    def load(self) -> float:
        return self.inner.load()

    async def aload(self) -> float:
        return await self.inner.aload()

    async def aclose(self) -> None:
        await self.inner.aclose()


def changes_complete_only(obj: LMBase, owner: type) -> bool:
    """True when a subclass of ``owner`` below it overrides ``complete`` but not ``astream``.

    ``owner`` streams by forwarding; such a subclass changes what a call does, so its streamed calls
    must go through its ``complete`` (as one delta) rather than around it.
    """
    for klass in type(obj).__mro__:
        if klass is owner:
            return False
        if "astream" in vars(klass):
            return False
        if "complete" in vars(klass):
            return True
    return False


class _ProtocolOnly(_Delegating):
    """An object that implements only the ``LM`` protocol, seen through ``LMBase``'s defaults."""

    def __init__(self, inner: LM) -> None:
        self.inner = inner

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion:
        return await self.inner.complete(messages, **opts)

    async def astream(self, messages: Sequence[Message], **opts: Any) -> AsyncIterator[Delta]:
        """The object's own ``astream`` when it has one (it should follow ``LMBase.astream``)."""
        own = getattr(self.inner, "astream", None)
        if own is None:
            completion = await self.inner.complete(messages, **opts)
            yield Delta(completion.text, completion)
            return
        async with contextlib.aclosing(own(messages, **opts)) as stream:
            async for delta in stream:
                yield delta


def full_lm(lm: LM) -> LMBase:
    """``lm`` with every optional ability defined: an ``LMBase`` as is, any other ``LM`` adapted."""
    if isinstance(lm, LMBase):
        return lm
    return _ProtocolOnly(lm)


def upper_bound_input_tokens(messages: Sequence[Message]) -> int:
    """A sound upper bound on input tokens for byte-level BPE tokenizers.

    Such tokenizers never emit more tokens than UTF-8 bytes; each message adds a few
    template tokens. Used to reserve budget when a backend has no tokenizer.
    """
    return sum(_utf8_len(m.content) + 16 for m in messages) + 16


def _utf8_len(text: str) -> int:
    # An ASCII str (CPython knows without scanning) is as many bytes as characters: no copy to encode.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
