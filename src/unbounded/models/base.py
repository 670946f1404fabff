"""The one model protocol every backend implements, and the value types it speaks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


@runtime_checkable
class LM(Protocol):
    """A language model backend.

    ``name`` is the spec string that selects it (e.g. ``local/qwen2.5-coder-1.5b``).
    ``max_concurrency`` bounds how many calls run at once on this instance; the engine enforces it.
    ``context_window`` is the model's window in tokens (None if unknown).

    ``complete`` accepts the options ``max_tokens``, ``temperature``, ``stop`` and ``seed``;
    a backend ignores what it cannot honour.
    """

    name: str
    max_concurrency: int
    context_window: int | None

    async def complete(self, messages: Sequence[Message], **opts: Any) -> Completion: ...


class LMBase:
    """Convenience base for backends: defaults for the optional parts of the protocol."""

    name: str = "lm"
    max_concurrency: int = 32
    context_window: int | None = None
    #: Default output cap (tokens) used when the caller gives none; also the reservation size.
    default_max_tokens: int = 1024

    def count_tokens(self, messages: Sequence[Message]) -> int | None:
        """Exact input token count if the backend has a tokenizer; None otherwise."""
        return None

    def price(self) -> tuple[float, float, float] | None:
        """USD per million (input, output, cached input) tokens; None where unknown."""
        return (0.0, 0.0, 0.0)

    def cost(self, usage: Usage) -> float | None:
        p = self.price()
        if p is None:
            return None
        pin, pout, pcached = p
        fresh = max(usage.input_tokens - usage.cached_input_tokens, 0)
        return (fresh * pin + usage.cached_input_tokens * pcached + usage.output_tokens * pout) / 1e6

    async def aclose(self) -> None:
        return None


class WrappedLM(LMBase):
    """Base for a layer around another LM (a cache, a meter): the protocol's attributes and
    ``count_tokens``/``price``/``cost`` are the wrapped model's; subclasses add ``complete``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @property  # type: ignore[override]
    def name(self) -> str:
        return self.inner.name

    @property  # type: ignore[override]
    def max_concurrency(self) -> int:
        return self.inner.max_concurrency

    @property  # type: ignore[override]
    def context_window(self) -> int | None:
        return self.inner.context_window

    @property  # type: ignore[override]
    def default_max_tokens(self) -> int:
        return getattr(self.inner, "default_max_tokens", LMBase.default_max_tokens)

    def count_tokens(self, messages: Sequence[Message]) -> int | None:
        fn = getattr(self.inner, "count_tokens", None)
        return fn(messages) if fn is not None else None

    def price(self) -> tuple[float, float, float] | None:
        fn = getattr(self.inner, "price", None)
        return fn() if fn is not None else None

    def cost(self, usage: Usage) -> float | None:
        fn = getattr(self.inner, "cost", None)
        return fn(usage) if fn is not None else super().cost(usage)


def upper_bound_input_tokens(messages: Sequence[Message]) -> int:
    """A sound upper bound on input tokens for byte-level BPE tokenizers.

    Such tokenizers never emit more tokens than UTF-8 bytes; each message adds a few
    template tokens. Used to reserve budget when a backend has no tokenizer.
    """
    return sum(len(m.content.encode("utf-8", "surrogatepass")) + 16 for m in messages) + 16
