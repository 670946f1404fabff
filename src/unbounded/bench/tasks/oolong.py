"""OOLONG-style aggregation over records whose class must be inferred (the ``trec_coarse`` flavour).

Questions count, compare and rank the hidden classes over all records, a set of users or a date
range. Numeric answers score ``0.75 ** |gold - predicted|`` (the last number in the answer);
others score exact match after normalisation.
"""

from __future__ import annotations

import functools
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .answers import answer_segment, last_number, match_choice
from .base import CHARS_PER_TOKEN, TaskItem, check_size, context_chars, item_id, item_rng
from .records import (
    DAYS,
    RecordSet,
    day_date,
    describe_records,
    format_day,
    generate_records,
    month_key,
    month_name,
)
from .trec import CLASSES

NAME = "oolong"
RELATIONS = ("more common than", "less common than", "same frequency as")

ANSWER_FORMATS = {
    "numeric": "Give the final answer on the last line as `Answer: <integer>`.",
    "label": "Give the final answer on the last line as `Answer: <category>`, where <category> is "
    "exactly one of: " + ", ".join(CLASSES) + ".",
    "comparison": "Give the final answer on the last line as `Answer: <relation>`, where <relation> "
    "is exactly one of: " + ", ".join(RELATIONS) + ".",
    "user": "Give the final answer on the last line as `Answer: <user id>`.",
    "month": "Give the final answer on the last line as `Answer: <Month YYYY>`, e.g. `Answer: March 2022`.",
}


@dataclass(slots=True)
class Question:
    """A generated question: its text, gold answer, answer type and the parameters behind it."""

    kind: str
    text: str
    answer: str | int
    answer_type: str
    params: dict[str, Any] = field(default_factory=dict)
    choices: list[str] = field(default_factory=list)


def _label_name(i: int) -> str:
    return CLASSES[i]


def _unique_max(counter: Counter, keys: list, *, least: bool = False) -> Any | None:
    """The key with the strictly highest (or lowest) count, or None on a tie."""
    if not keys:
        return None
    ordered = sorted(keys, key=lambda k: counter.get(k, 0), reverse=not least)
    if len(ordered) > 1 and counter.get(ordered[0], 0) == counter.get(ordered[1], 0):
        return None
    return ordered[0]


def _pick_users(rng: random.Random, rs: RecordSet) -> list[int]:
    active = sorted(set(rs.users))
    return sorted(rng.sample(active, min(len(active), rng.randint(2, 5))))


def _users_phrase(users: list[int]) -> str:
    ids = [str(u) for u in users]
    return ", ".join(ids[:-1]) + f" and {ids[-1]}" if len(ids) > 1 else ids[0]


def _q_count(rng: random.Random, rs: RecordSet) -> Question | None:
    x = rng.randrange(len(CLASSES))
    gold = rs.label_counts()[x]
    text = f"How many instances in the context belong to the category '{_label_name(x)}'?"
    return Question("count", text, gold, "numeric", {"label": _label_name(x)})


def _q_count_users(rng: random.Random, rs: RecordSet) -> Question | None:
    x = rng.randrange(len(CLASSES))
    users = _pick_users(rng, rs)
    keep = set(users)
    gold = sum(1 for lab, u in zip(rs.labels, rs.users, strict=True) if lab == x and u in keep)
    text = (
        f"Consider only the instances of the users with IDs {_users_phrase(users)}. "
        f"How many of those instances belong to the category '{_label_name(x)}'?"
    )
    return Question("count_users", text, gold, "numeric", {"label": _label_name(x), "users": users})


@functools.cache
def _month_starts() -> tuple[int, ...]:
    return tuple(d for d in range(DAYS) if day_date(d).day == 1)


def _month_bounds(rng: random.Random) -> tuple[int, int]:
    """A random range of whole months, as inclusive day indices."""
    starts = _month_starts()
    i = rng.randrange(len(starts))
    j = min(len(starts) - 1, i + rng.randint(0, 5))
    end = starts[j + 1] - 1 if j + 1 < len(starts) else DAYS - 1
    return starts[i], end


def _q_count_dates(rng: random.Random, rs: RecordSet) -> Question | None:
    x = rng.randrange(len(CLASSES))
    lo, hi = _month_bounds(rng)
    gold = sum(1 for lab, d in zip(rs.labels, rs.days, strict=True) if lab == x and lo <= d <= hi)
    text = (
        f"How many instances dated from {format_day(lo)} to {format_day(hi)} (inclusive) belong to "
        f"the category '{_label_name(x)}'?"
    )
    params = {"label": _label_name(x), "start": format_day(lo), "end": format_day(hi)}
    return Question("count_dates", text, gold, "numeric", params)


def _q_compare(rng: random.Random, rs: RecordSet) -> Question | None:
    x, y = rng.sample(range(len(CLASSES)), 2)
    counts = rs.label_counts()
    if counts[x] > counts[y]:
        rel = RELATIONS[0]
    elif counts[x] < counts[y]:
        rel = RELATIONS[1]
    else:
        rel = RELATIONS[2]
    text = (
        f"In the context, is the category '{_label_name(x)}' more common than, less common than, or "
        f"the same frequency as the category '{_label_name(y)}'?"
    )
    params = {"label": _label_name(x), "other": _label_name(y)}
    return Question("compare", text, rel, "comparison", params, list(RELATIONS))


def _q_extreme_label(rng: random.Random, rs: RecordSet) -> Question | None:
    least = rng.random() < 0.4
    best = _unique_max(rs.label_counts(), list(range(len(CLASSES))), least=least)
    if best is None:
        return None
    word = "least" if least else "most"
    text = f"Which category is the {word} common among all instances in the context?"
    return Question(f"{word}_common", text, _label_name(best), "label", {"least": least}, list(CLASSES))


def _q_extreme_label_users(rng: random.Random, rs: RecordSet) -> Question | None:
    users = _pick_users(rng, rs)
    keep = set(users)
    counts = Counter(lab for lab, u in zip(rs.labels, rs.users, strict=True) if u in keep)
    best = _unique_max(counts, list(range(len(CLASSES))))
    if best is None:
        return None
    text = (
        f"Consider only the instances of the users with IDs {_users_phrase(users)}. "
        "Which category is the most common among those instances?"
    )
    return Question("most_common_users", text, _label_name(best), "label", {"users": users}, list(CLASSES))


def _q_user_most(rng: random.Random, rs: RecordSet) -> Question | None:
    x = rng.randrange(len(CLASSES))
    counts = Counter(u for lab, u in zip(rs.labels, rs.users, strict=True) if lab == x)
    best = _unique_max(counts, rs.user_ids)
    if best is None or counts[best] == 0:
        return None
    text = f"Which user has the most instances that belong to the category '{_label_name(x)}'?"
    return Question("user_most", text, str(best), "user", {"label": _label_name(x)})


def _q_month_most(rng: random.Random, rs: RecordSet) -> Question | None:
    x = rng.randrange(len(CLASSES))
    counts = Counter(month_key(d) for lab, d in zip(rs.labels, rs.days, strict=True) if lab == x)
    best = _unique_max(counts, sorted(counts))
    if best is None:
        return None
    text = f"In which calendar month do the most instances belong to the category '{_label_name(x)}'?"
    return Question("month_most", text, month_name(best), "month", {"label": _label_name(x)})


_KINDS: tuple[tuple[Callable[[random.Random, RecordSet], Question | None], int], ...] = (
    (_q_count, 3),
    (_q_count_users, 2),
    (_q_count_dates, 2),
    (_q_compare, 3),
    (_q_extreme_label, 2),
    (_q_extreme_label_users, 1),
    (_q_user_most, 1),
    (_q_month_most, 1),
)


def make_question(rng: random.Random, rs: RecordSet) -> Question:
    """Draw question kinds until one has an unambiguous gold answer (ties are rejected)."""
    makers = [m for m, _ in _KINDS]
    weights = [w for _, w in _KINDS]
    for _ in range(200):
        q = rng.choices(makers, weights=weights)[0](rng, rs)
        if q is not None:
            return q
    return _q_count(rng, rs)  # type: ignore[return-value]  # always answerable


def generate(
    size_tokens: int,
    n: int = 1,
    seed: int = 0,
    *,
    questions_per_context: int = 1,
    n_users: int | None = None,
) -> list[TaskItem]:
    """``n`` questions over records of about ``size_tokens`` tokens.

    With ``questions_per_context`` > 1, consecutive items share one record set (the same string
    object), as OOLONG asks many questions of one context; memory then stays near one context.
    """
    check_size(size_tokens, 100)
    chars = size_tokens * CHARS_PER_TOKEN
    items: list[TaskItem] = []
    rs: RecordSet | None = None
    per = max(1, questions_per_context)
    for i in range(n):
        if i % per == 0:
            rs = generate_records(item_rng(NAME, seed, size_tokens, i), chars, n_users)
        assert rs is not None
        q = make_question(item_rng(NAME + "/q", seed, size_tokens, i), rs)
        items.append(_item(q, rs, size_tokens, seed, i))
    return items


def _item(q: Question, rs: RecordSet, size_tokens: int, seed: int, i: int) -> TaskItem:
    return TaskItem(
        task=NAME,
        id=item_id(NAME, size_tokens, seed, i),
        size_tokens=context_chars(rs.text) // CHARS_PER_TOKEN,
        question=f"{describe_records()}\n\n{q.text}",
        context=rs.text,
        answer=q.answer,
        answer_format=ANSWER_FORMATS[q.answer_type],
        metadata={
            "kind": q.kind,
            "answer_type": q.answer_type,
            "choices": q.choices,
            "params": q.params,
            "n_records": len(rs),
            "n_users": len(rs.user_ids),
            "labels": rs.labels_string(),
        },
    )


_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_MONTH_RE = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s*,?\s*(\d{4})\b|\b(\d{4})-(\d{1,2})\b",
    re.IGNORECASE,
)


def _months_named(text: str) -> set[str]:
    found = set()
    for m in _MONTH_RE.finditer(text):
        if m.group(1):
            month = next(i for i, name in enumerate(_MONTHS, 1) if name.startswith(m.group(1).lower()[:3]))
            found.add(f"{_MONTHS[month - 1].title()} {m.group(2)}")
        else:
            month = int(m.group(4))
            if 1 <= month <= 12:
                found.add(f"{_MONTHS[month - 1].title()} {m.group(3)}")
    return found


def score_answer(answer_type: str, gold: str | int, prediction: str, choices: list[str]) -> float:
    """Score one prediction against a gold answer of the given type (shared with oolong-pairs' tests)."""
    seg = answer_segment(prediction)
    if answer_type == "numeric":
        y = last_number(seg)
        return 0.0 if y is None else float(0.75 ** abs(float(gold) - y))
    if answer_type == "user":
        ids = set(re.findall(r"\b\d{5}\b", seg))
        return 1.0 if ids == {str(gold)} else 0.0
    if answer_type == "month":
        return 1.0 if _months_named(seg) == {str(gold)} else 0.0
    return 1.0 if match_choice(seg, str(gold), choices) else 0.0


def score(item: TaskItem, prediction: str) -> float:
    meta = item.metadata
    return score_answer(meta["answer_type"], item.answer, prediction, meta.get("choices") or [])  # type: ignore[arg-type]
