"""``realqa``: a held-out evaluation set of questions about real inputs, split once into dev and test.

    items = generate(16 * 2**20, n=24, split="test")     # TaskItem list
    score(items[0], "Answer: 78")

48 questions, 8 of each shape (``questions.SHAPES``), over inputs every Debian machine with Python
has (``sources.SOURCES``): stdlib packages, the stdlib's top folder and all of it, the help topics,
the common licenses, the dpkg status file, package descriptions and copyright files, from ~180K to
~12M characters. Gold answers are computed from the input at generation time (``ast`` for code,
python-debian for records), so they hold for the Python and the machine that runs the set.

The split (``split_of``): within each shape, questions are ordered by the SHA-256 of
``"realqa/" + qid`` and alternate dev, test, dev, test, ... So each half holds 4 questions of each
shape, and the assignment depends on nothing but the ids. It was made once: tune on ``dev``, report
``test``. Adding or removing a question would move others between halves, so a change to the set is
a new set under a new name, never an edit of this one.

Sizes. The items have their natural sizes; ``size_tokens`` (``--sizes``) is a ceiling: the items
whose context is at most that many tokens (characters / 4), in a fixed order that cycles through the
shapes, and the first ``n`` of those. So ``--sizes 16m`` selects every question, ``--sizes 128k``
only those over the smaller inputs, and the bench report groups each ceiling as its own row. Asking
for more items than the ceiling holds is an error that says how many there are. ``seed`` does not
change the set (it is fixed); it is part of the item ids, as for every task.

Three tasks are registered: ``realqa`` (both halves), ``realqa-dev`` and ``realqa-test``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from ..base import CHARS_PER_TOKEN, TaskItem, context_chars, item_id
from ..stdlib import python_version
from .questions import QUESTIONS, SHAPES, Question
from .scoring import answer_format, score_kind
from .sources import SOURCES, MissingInputError, load

NAME = "realqa"
DEV = "realqa-dev"
TEST = "realqa-test"
SPLITS = ("dev", "test", "all")
TASK_SPLITS = {NAME: "all", DEV: "dev", TEST: "test"}


def _rank_key(qid: str) -> str:
    return hashlib.sha256(f"realqa/{qid}".encode()).hexdigest()


@functools.cache
def _assignment() -> dict[str, str]:
    out: dict[str, str] = {}
    for shape in SHAPES:
        ranked = sorted((q.qid for q in QUESTIONS if q.shape == shape), key=_rank_key)
        for i, qid in enumerate(ranked):
            out[qid] = "dev" if i % 2 == 0 else "test"
    return out


def split_of(qid: str) -> str:
    """``dev`` or ``test``: the half a question belongs to (see the module docstring for the rule)."""
    try:
        return _assignment()[qid]
    except KeyError:
        raise ValueError(f"no realqa question {qid!r}") from None


def select(split: str = "all", shape: str | None = None) -> list[Question]:
    """The questions of a split in item order: shapes take turns, each in its hash order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if shape is not None and shape not in SHAPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    per_shape = [
        sorted(
            (q for q in QUESTIONS if q.shape == s and (split == "all" or split_of(q.qid) == split)),
            key=lambda q: _rank_key(q.qid),
        )
        for s in SHAPES
        if shape is None or s == shape
    ]
    ordered: list[Question] = []
    for i in range(max((len(x) for x in per_shape), default=0)):
        ordered.extend(group[i] for group in per_shape if i < len(group))
    return ordered


@dataclass(frozen=True, slots=True)
class Built:
    """A question with its context and gold answer, as generated on this machine."""

    question: Question
    context: Any
    answer: Any
    size_tokens: int


@functools.cache
def build(qid: str) -> Built:
    """The question's context and computed answer (cached per process: the set is fixed)."""
    q = {q.qid: q for q in QUESTIONS}[qid]
    context = load(q.source)
    return Built(q, context, q.answer(), context_chars(context) // CHARS_PER_TOKEN)


def generate(
    size_tokens: int,
    n: int = 1,
    seed: int = 0,
    *,
    split: str = "all",
    shape: str | None = None,
    task: str | None = None,
) -> list[TaskItem]:
    """The first ``n`` questions of ``split`` whose context is at most ``size_tokens`` tokens."""
    if n < 0:
        raise ValueError("n must be >= 0")
    task = task or {"all": NAME, "dev": DEV, "test": TEST}.get(split, NAME)
    chosen = select(split, shape)
    items: list[TaskItem] = []
    sizes: list[int] = []
    for q in chosen:
        if len(items) == n:
            break
        built = build(q.qid)
        sizes.append(built.size_tokens)
        if built.size_tokens > size_tokens:
            continue
        items.append(_item(task, built, size_tokens, seed, len(items), split_of(q.qid)))
    if len(items) < n:
        every = sorted(build(q.qid).size_tokens for q in chosen)
        fit = sum(1 for s in every if s <= size_tokens)
        raise ValueError(
            f"{task}: {fit} of its {len(chosen)} questions have a context of at most {size_tokens:,} tokens, asked "
            f"for {n}; contexts span {every[0]:,} to {every[-1]:,} tokens: lower -n or raise --sizes "
            f"(e.g. --sizes 16m for all of them)"
        )
    return items


def _item(task: str, built: Built, ceiling: int, seed: int, index: int, half: str) -> TaskItem:
    q = built.question
    source = SOURCES[q.source]
    return TaskItem(
        task=task,
        id=item_id(task, ceiling, seed, index),
        size_tokens=built.size_tokens,
        question=f"{source.description} {q.text}",
        context=built.context,
        answer=built.answer,
        answer_format=answer_format(q.kind, q.noun),
        metadata={
            "qid": q.qid,
            "shape": q.shape,
            "split": half,
            "source": q.source,
            "kind": q.kind,
            "tolerance": q.tolerance,
            "items": q.items,
            "python": python_version(),
        },
    )


def score(item: TaskItem, prediction: str) -> float:
    meta = item.metadata
    return score_kind(
        meta["kind"],
        prediction,
        item.answer,
        tolerance=float(meta.get("tolerance") or 0.0),
        items=meta.get("items", "name"),
    )


generate_dev = functools.partial(generate, split="dev")
generate_test = functools.partial(generate, split="test")

__all__ = [
    "DEV",
    "NAME",
    "QUESTIONS",
    "SHAPES",
    "SPLITS",
    "TEST",
    "MissingInputError",
    "build",
    "generate",
    "generate_dev",
    "generate_test",
    "score",
    "select",
    "split_of",
]
