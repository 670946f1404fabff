"""Seeded long-context task generators and their scorers.

    items = generate("niah", size_tokens=131_072, n=10, seed=0)
    s = score(items[0], "Answer: 1234567")   # float in [0, 1]

Every generator is deterministic for (task, size, n, seed, options), needs no download, and builds
contexts from 8K to 10M+ tokens (sizes are characters / 4). Task-specific options are keyword
arguments passed through ``generate``, e.g. ``generate("niah", ..., haystack="noise")``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import codeqa, multihop, niah, oolong, oolong_pairs
from .base import CHARS_PER_TOKEN, Context, Gold, TaskItem, context_chars, context_tokens


@dataclass(frozen=True, slots=True)
class TaskSpec:
    name: str
    generate: Callable[..., list[TaskItem]]
    score: Callable[[TaskItem, str], float]
    description: str


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(niah.NAME, niah.generate, niah.score, "single needle in a haystack (RULER style)"),
        TaskSpec(oolong.NAME, oolong.generate, oolong.score, "aggregate over records of hidden classes"),
        TaskSpec(oolong_pairs.NAME, oolong_pairs.generate, oolong_pairs.score, "pairs of users meeting a condition"),
        TaskSpec(codeqa.NAME, codeqa.generate, codeqa.score, "multiple choice about stdlib source code"),
        TaskSpec(multihop.NAME, multihop.generate, multihop.score, "2-3 hop questions over generated documents"),
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
