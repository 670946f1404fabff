"""What every benchmark method shares: its options, its result, and a metered, window-aware caller."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...models import LM, Message, Usage
from ...models.base import full_lm

#: Told to every method's model (baselines and RLM alike) so that no method gets a better brief.
SYSTEM_PROMPT = (
    "You answer questions about a long context. Work only from the context you are given, "
    "and follow the requested answer format exactly."
)


@dataclass(slots=True)
class MethodConfig:
    """Options for the methods. Token figures are in the model's tokens.

    ``context_window`` applies only when the model does not report one. ``safety`` is the share
    of the computed room a prompt may fill, which absorbs the error of the chars/4 estimate when the
    backend has no tokenizer (numbers, UUIDs and code tokenise denser than English prose).
    """

    context_window: int = 32_768
    max_answer_tokens: int = 1_024
    summary_tokens: int = 1_024
    chunk_tokens: int = 800
    top_k: int | None = None
    chars_per_token: float = 4.0
    safety: float = 0.9
    # RLM methods
    max_depth: int = 1
    max_iterations: int = 20
    max_llm_calls: int = 200
    repl: str = "process"
    sub_model: Any = None
    #: The RLM methods' prompt style (``auto``: by what the model declares; see ``unbounded.styles``).
    prompt_style: str = "auto"
    trace_dir: str | None = None
    #: One item's trace file; overrides ``trace_dir`` (the bench runner names its traces itself).
    trace_file: str | None = None


@dataclass(slots=True)
class MethodResult:
    """The outcome of one method on one item.

    ``status`` is ``ok`` for a baseline that produced an answer; the RLM methods report the engine's
    status (``final``, ``max_iterations``, ``budget:<limit>``, ``error:<kind>``). ``notes`` carries
    method-specific facts for the report, e.g. whether and how much the context was truncated.
    """

    method: str
    answer: str | None
    usage: Usage
    seconds: float
    calls: int
    status: str = "ok"
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "answer": self.answer,
            "usage": self.usage.to_dict(),
            "seconds": self.seconds,
            "calls": self.calls,
            "status": self.status,
            "notes": self.notes,
        }


@dataclass(slots=True)
class Fitted:
    """A prompt built around a text that was cut, if needed, to fit the window."""

    messages: list[Message]
    kept_chars: int
    total_chars: int

    @property
    def truncated(self) -> bool:
        return self.kept_chars < self.total_chars


class Caller:
    """Calls one model at temperature 0, adds up usage, and measures prompts against its window."""

    def __init__(self, lm: LM, config: MethodConfig) -> None:
        self.lm = full_lm(lm)
        self.config = config
        self.usage = Usage()
        self.window = lm.context_window or config.context_window

    async def __call__(self, messages: Sequence[Message], max_tokens: int) -> str:
        completion = await self.lm.complete(list(messages), max_tokens=max_tokens, temperature=0)
        usage = Usage.from_dict(completion.usage.to_dict())
        usage.calls = max(usage.calls, 1)  # a backend that reports no call count still made one
        self.usage.add(usage)
        return completion.text

    def estimate(self, chars: int) -> int:
        return math.ceil(chars / self.config.chars_per_token)

    def exact_tokens(self, messages: Sequence[Message]) -> int | None:
        """The backend's own count, or None when it has no tokenizer."""
        if not self.lm.abilities.tokenizer:
            return None
        exact = self.lm.count_tokens(list(messages))
        return exact if isinstance(exact, int) else None

    def tokens(self, messages: Sequence[Message]) -> int:
        """Exact count when the backend can tokenise, else chars / ``chars_per_token`` plus framing."""
        exact = self.exact_tokens(messages)
        if exact is not None:
            return exact
        return sum(self.estimate(len(m.content)) + 4 for m in messages) + 2

    def room(self, output_tokens: int) -> int:
        """Input tokens a prompt may use, leaving ``output_tokens`` for the reply."""
        return self.window - output_tokens

    def fit(self, text: str, build: Callable[[str], list[Message]], output_tokens: int) -> Fitted:
        """The longest head of ``text`` whose prompt, built by ``build``, fits the window.

        The first cut is estimated from characters (with the ``safety`` margin when the backend
        cannot count); with an exact counter the prompt is then measured and cut again,
        proportionally, until it fits.
        """
        limit = self.room(output_tokens)
        empty = build("")
        exact = self.exact_tokens(empty) is not None
        overhead = self.tokens(empty)
        avail = max(limit - overhead, 0)
        keep = int(avail * (1.0 if exact else self.config.safety) * self.config.chars_per_token)
        keep = min(keep, len(text))
        for _ in range(8):
            cut = _cut(text, keep)
            messages = build(cut)
            used = self.tokens(messages)
            if used <= limit or keep == 0:
                return Fitted(messages, len(cut), len(text))
            keep = int(keep * (limit - overhead) / max(used - overhead, 1) * 0.95)
        cut = _cut(text, 0)
        return Fitted(build(cut), 0, len(text))


def _cut(text: str, keep: int) -> str:
    """``text[:keep]``, moved back to a line break when one is close, so records stay whole."""
    if keep >= len(text):
        return text
    nl = text.rfind("\n", max(0, keep - 2_000), keep)
    return text[: nl if nl > 0 else keep]


def user_prompt(question: str, answer_format: str) -> str:
    return f"Question: {question}\n\n{answer_format}"
