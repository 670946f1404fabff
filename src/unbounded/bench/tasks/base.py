"""The value type every task generator returns, and the size convention they share."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

#: Sizes are estimated as characters / 4, the usual rule of thumb for English text and code.
CHARS_PER_TOKEN = 4

Context = str | list[str] | dict[str, str]
#: A gold answer: a string, a count, or (oolong-pairs) a sorted list of user-id pairs.
Gold = str | int | list[tuple[int, int]]


@dataclass(slots=True)
class TaskItem:
    """One benchmark question with its context and gold answer.

    ``answer_format`` is the instruction that tells any method (baseline or RLM) what shape the
    answer must take; every method passes it to the model verbatim so that scoring is fair.
    ``size_tokens`` is the context size actually generated (characters / 4), which is within a few
    percent of the size asked for. ``metadata`` holds what a scorer or a test needs beyond the gold
    answer (the answer type, the hidden labels of generated records, the needle depth, ...); it is
    never shown to a method.
    """

    task: str
    id: str
    size_tokens: int
    question: str
    context: Context
    answer: Gold
    answer_format: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def summary(self, *, metadata_keys: tuple[str, ...] | None = None) -> dict[str, Any]:
        """A JSON-friendly description of the item without its (possibly huge) context."""
        meta = self.metadata
        if metadata_keys is not None:
            meta = {k: v for k, v in meta.items() if k in metadata_keys}
        answer: Any = self.answer
        if isinstance(answer, list):
            answer = [list(p) for p in answer]
        return {
            "task": self.task,
            "id": self.id,
            "size_tokens": self.size_tokens,
            "question": self.question,
            "answer": answer,
            "answer_format": self.answer_format,
            "context_type": type(self.context).__name__,
            "metadata": meta,
        }


def context_chars(context: Context) -> int:
    """Characters in a context: a string's length, a list's items, a dict's keys and values."""
    if isinstance(context, str):
        return len(context)
    if isinstance(context, dict):
        return sum(len(k) + len(v) for k, v in context.items())
    return sum(len(x) for x in context)


def context_tokens(context: Context) -> int:
    return context_chars(context) // CHARS_PER_TOKEN


def item_rng(task: str, seed: int, size_tokens: int, index: int) -> random.Random:
    """An RNG for one item. String seeds hash with SHA-512, so this is stable across runs."""
    return random.Random(f"unbounded.bench/{task}/{seed}/{size_tokens}/{index}")


def item_id(task: str, size_tokens: int, seed: int, index: int) -> str:
    return f"{task}-{size_tokens}-s{seed}-{index}"


def check_size(size_tokens: int, minimum: int = 1_000) -> None:
    if size_tokens < minimum:
        raise ValueError(f"size_tokens must be at least {minimum}, got {size_tokens}")
