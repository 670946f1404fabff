"""Seeded long-context task generators and their scorers.

    items = generate("niah", size_tokens=131_072, n=10, seed=0)
    s = score(items[0], "Answer: 1234567")   # float in [0, 1]

Every generator is deterministic for (task, size, n, seed, options) and needs no download. The
generated tasks build contexts from 8K to 10M+ tokens (sizes are characters / 4); ``realqa`` is a
fixed set over real inputs, whose natural sizes ``size_tokens`` only selects (see ``realqa``).
Task-specific options are keyword arguments passed through ``generate``, e.g.
``generate("niah", ..., haystack="noise")``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import codeqa, multihop, niah, oolong, oolong_pairs, realqa
from .base import CHARS_PER_TOKEN, Context, Gold, TaskItem, context_chars, context_tokens


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task. ``sized`` is False for a fixed set of real inputs (``realqa``), whose items keep their
    natural sizes: there ``size_tokens`` selects items (a ceiling) instead of setting their size."""

    name: str
    generate: Callable[..., list[TaskItem]]
    score: Callable[[TaskItem, str], float]
    description: str
    sized: bool = True


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(niah.NAME, niah.generate, niah.score, "single needle in a haystack (RULER style)"),
        TaskSpec(oolong.NAME, oolong.generate, oolong.score, "aggregate over records of hidden classes"),
        TaskSpec(oolong_pairs.NAME, oolong_pairs.generate, oolong_pairs.score, "pairs of users meeting a condition"),
        TaskSpec(codeqa.NAME, codeqa.generate, codeqa.score, "multiple choice about stdlib source code"),
        TaskSpec(multihop.NAME, multihop.generate, multihop.score, "2-3 hop questions over generated documents"),
        TaskSpec(realqa.NAME, realqa.generate, realqa.score, "48 questions about real inputs", sized=False),
        TaskSpec(realqa.DEV, realqa.generate_dev, realqa.score, "realqa's dev half: tune on it", sized=False),
        TaskSpec(realqa.TEST, realqa.generate_test, realqa.score, "realqa's held-out half: report it", sized=False),
    )
}


def task_names() -> list[str]:
    return list(TASKS)


def _spec(task: str) -> TaskSpec:
    try:
        return TASKS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}") from None


def generate(task: str, size_tokens: int, n: int = 1, seed: int = 0, **options: Any) -> list[TaskItem]:
    """``n`` items of ``task`` with contexts of about ``size_tokens`` tokens (within a few percent)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    return _spec(task).generate(size_tokens, n, seed, **options)


def score(item: TaskItem, prediction: str | None) -> float:
    """The item's task scorer: a float in [0, 1]. A missing prediction scores 0."""
    if prediction is None:
        return 0.0
    return _spec(item.task).score(item, prediction)


__all__ = [
    "CHARS_PER_TOKEN",
    "TASKS",
    "Context",
    "Gold",
    "TaskItem",
    "TaskSpec",
    "context_chars",
    "context_tokens",
    "generate",
    "score",
    "task_names",
]
