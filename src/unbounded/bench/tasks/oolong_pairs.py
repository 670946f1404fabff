"""OOLONG-Pairs: list every pair of users that meets a condition over their (hidden-class) records.

Twenty templates combine per-user conditions: symmetric ones ("both users have at least k
instances of X or Y") and asymmetric ones ("one has exactly k X, the other at least m Y"), some
bounded by dates. Thresholds are drawn from the generated data so that conditions stay selective
at any context size, and the user count is kept modest so the gold sets stay listable.
Score: F1 between the predicted and gold sets of pairs.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

from .answers import f1, parse_pairs
from .base import CHARS_PER_TOKEN, TaskItem, check_size, context_chars, item_id, item_rng
from .records import DAYS, RecordSet, describe_records, format_day, generate_records
from .trec import CLASSES

NAME = "oolong-pairs"
ANSWER_FORMAT = (
    "List every qualifying pair on its own line as `(id1, id2)`, with the lower user ID first and each "
    "pair once. Write nothing else after the list."
)


@dataclass(frozen=True, slots=True)
class Cond:
    """A condition on one user's instances.

    ``op``: ``atleast``/``exactly``/``atmost`` compare the number of the user's instances whose class
    is in ``classes`` (dated within ``start``..``end`` inclusive, day indices, when given) with ``k``;
    ``none`` means that number is zero; ``more`` means it exceeds the number for ``other``.
    """

    op: str
    classes: tuple[int, ...]
    k: int = 0
    other: tuple[int, ...] = ()
    start: int | None = None
    end: int | None = None

    def text(self) -> str:
        names = " or ".join(f"'{CLASSES[c]}'" for c in self.classes)
        window = ""
        if self.start is not None and self.end is not None:
            window = f" dated from {format_day(self.start)} to {format_day(self.end)}"
        elif self.end is not None:
            window = f" dated on or before {format_day(self.end)}"
        elif self.start is not None:
            window = f" dated on or after {format_day(self.start)}"
        noun = "instance" if self.k == 1 else "instances"
        if self.op == "none":
            return f"no instances of category {names}{window}"
        if self.op == "more":
            others = " or ".join(f"'{CLASSES[c]}'" for c in self.other)
            return f"more instances of category {names} than of category {others}{window}"
        word = {"atleast": "at least", "exactly": "exactly", "atmost": "at most"}[self.op]
        return f"{word} {self.k} {noun} of category {names}{window}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"] = [CLASSES[c] for c in self.classes]
        d["other"] = [CLASSES[c] for c in self.other]
        d["start"] = None if self.start is None else format_day(self.start)
        d["end"] = None if self.end is None else format_day(self.end)
        return d


class UserCounts:
    """Per-user, per-class sorted day lists, so windowed counts are two bisections."""

    def __init__(self, rs: RecordSet) -> None:
        self.users = sorted(set(rs.users))
        self._days: dict[tuple[int, int], list[int]] = {}
        for lab, uid, day in zip(rs.labels, rs.users, rs.days, strict=True):
            self._days.setdefault((uid, lab), []).append(day)
        for days in self._days.values():
            days.sort()

    def count(self, uid: int, classes: tuple[int, ...], start: int | None, end: int | None) -> int:
        lo = 0 if start is None else start
        hi = DAYS if end is None else end + 1
        total = 0
        for c in classes:
            days = self._days.get((uid, c), [])
            total += bisect.bisect_left(days, hi) - bisect.bisect_left(days, lo)
        return total

    def holds(self, uid: int, cond: Cond) -> bool:
        n = self.count(uid, cond.classes, cond.start, cond.end)
        if cond.op == "atleast":
            return n >= cond.k
        if cond.op == "exactly":
            return n == cond.k
        if cond.op == "atmost":
            return n <= cond.k
        if cond.op == "none":
            return n == 0
        if cond.op == "more":
            return n > self.count(uid, cond.other, cond.start, cond.end)
        raise ValueError(f"unknown condition op {cond.op!r}")

    def values(self, classes: tuple[int, ...], start: int | None, end: int | None) -> list[int]:
        return [self.count(u, classes, start, end) for u in self.users]


@dataclass(slots=True)
class PairQuestion:
    template: int
    first: list[Cond]
    second: list[Cond] | None  # None: symmetric, both users meet ``first``

    def text(self) -> str:
        a = " and ".join(c.text() for c in self.first)
        if self.second is None:
            body = f"both users have {a}"
        else:
            b = " and ".join(c.text() for c in self.second)
            body = f"one user has {a}, and the other user has {b}"
        return (
            "List all pairs of user IDs (each pair once, lower ID first) where "
            f"{body}. Count each user's instances by category over all their records unless dates "
            "are given."
        )


def gold_pairs(uc: UserCounts, q: PairQuestion) -> list[tuple[int, int]]:
    ok1 = {u for u in uc.users if all(uc.holds(u, c) for c in q.first)}
    if q.second is None:
        return sorted(combinations(sorted(ok1), 2))
    ok2 = {u for u in uc.users if all(uc.holds(u, c) for c in q.second)}
    pairs = {(min(a, b), max(a, b)) for a in ok1 for b in ok2 if a != b}
    return sorted(pairs)


def _quantile_k(rng: random.Random, values: list[int], lo: float, hi: float, floor: int = 1) -> int:
    """A threshold drawn from the users' own counts, between the ``lo`` and ``hi`` quantiles."""
    ordered = sorted(values)
    q = rng.uniform(lo, hi)
    return max(floor, ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def _window(rng: random.Random) -> tuple[int | None, int | None]:
    """A date bound: between two days, on/before a day, or on/after a day."""
    kind = rng.randrange(3)
    a, b = sorted(rng.sample(range(DAYS), 2))
    if b - a < 60:
        b = min(DAYS - 1, a + 60 + rng.randrange(300))
    if kind == 0:
        return a, b
    if kind == 1:
        return None, b
    return a, None


def _template(i: int, rng: random.Random, uc: UserCounts) -> PairQuestion:
    """Build template ``i`` (0..19) with classes, windows and thresholds drawn for this data."""
    x, y = rng.sample(range(len(CLASSES)), 2)
    X, Y, XY = (x,), (y,), (x, y)

    def k_at_least(cls: tuple[int, ...], s=None, e=None) -> int:
        return _quantile_k(rng, uc.values(cls, s, e), 0.55, 0.9)

    def k_exact(cls: tuple[int, ...], s=None, e=None) -> int:
        return _quantile_k(rng, uc.values(cls, s, e), 0.1, 0.9, floor=0)

    def k_at_most(cls: tuple[int, ...], s=None, e=None) -> int:
        return _quantile_k(rng, uc.values(cls, s, e), 0.05, 0.35, floor=0)

    s, e = _window(rng)
    mid = rng.randrange(120, DAYS - 120)
    sym: dict[int, list[Cond]] = {
        0: [Cond("atleast", X, k_at_least(X))],
        1: [Cond("atleast", XY, k_at_least(XY))],
        2: [Cond("exactly", X, k_exact(X))],
        3: [Cond("atleast", X, k_at_least(X)), Cond("atmost", Y, k_at_most(Y))],
        4: [Cond("atleast", X, k_at_least(X, s, e), start=s, end=e)],
        5: [Cond("exactly", X, k_exact(X, s, e), start=s, end=e)],
        6: [Cond("atleast", X, k_at_least(X)), Cond("atleast", Y, k_at_least(Y))],
        7: [Cond("atmost", X, k_at_most(X))],
        8: [Cond("more", X, other=Y)],
        9: [Cond("atleast", XY, k_at_least(XY, s, e), start=s, end=e)],
    }
    if i in sym:
        return PairQuestion(i, sym[i], None)
    asym: dict[int, tuple[list[Cond], list[Cond]]] = {
        10: ([Cond("exactly", X, k_exact(X))], [Cond("atleast", Y, k_at_least(Y))]),
        11: ([Cond("atleast", X, k_at_least(X))], [Cond("none", X)]),
        12: ([Cond("atleast", X, k_at_least(X))], [Cond("atleast", Y, k_at_least(Y))]),
        13: ([Cond("exactly", X, k_exact(X))], [Cond("exactly", Y, k_exact(Y))]),
        14: (
            [Cond("atleast", X, k_at_least(X, None, mid), end=mid)],
            [Cond("atleast", X, k_at_least(X, mid + 1, None), start=mid + 1)],
        ),
        15: ([Cond("more", X, other=Y)], [Cond("more", Y, other=X)]),
        16: (
            [Cond("atleast", X, k_at_least(X, s, e), start=s, end=e)],
            [Cond("none", X, start=s, end=e)],
        ),
        17: ([Cond("atmost", X, k_at_most(X))], [Cond("atleast", X, k_at_least(X))]),
        18: ([Cond("atleast", XY, k_at_least(XY))], [Cond("atmost", XY, k_at_most(XY))]),
        19: (
            [Cond("exactly", X, k_exact(X, s, e), start=s, end=e)],
            [Cond("more", Y, other=X, start=s, end=e)],
        ),
    }
    first, second = asym[i]
    return PairQuestion(i, first, second)


TEMPLATES = 20


def make_question(
    rng: random.Random, uc: UserCounts, template: int | None = None, max_pairs: int = 200
) -> tuple[PairQuestion, list[tuple[int, int]]]:
    """A question with 1..``max_pairs`` gold pairs, retrying parameters (and templates if needed)."""
    fallback: tuple[PairQuestion, list[tuple[int, int]]] | None = None
    for attempt in range(400):
        t = template if template is not None and attempt < 200 else rng.randrange(TEMPLATES)
        q = _template(t, rng, uc)
        gold = gold_pairs(uc, q)
        if 1 <= len(gold) <= max_pairs:
            return q, gold
        if gold and (fallback is None or len(gold) < len(fallback[1])):
            fallback = (q, gold)
    if fallback is None:
        raise RuntimeError("could not build an oolong-pairs question with a non-empty answer")
    return fallback


def default_users(chars: int) -> int:
    """Users scale gently with size: about 12 at 8K tokens, and 60 (the cap) from ~40K tokens on."""
    return max(12, min(60, chars // 2_500))


def generate(
    size_tokens: int,
    n: int = 1,
    seed: int = 0,
    *,
    n_users: int | None = None,
    template: int | None = None,
    max_pairs: int = 200,
    questions_per_context: int = 1,
) -> list[TaskItem]:
    """``n`` pair questions; item ``i`` uses template ``i % 20`` unless ``template`` is fixed."""
    check_size(size_tokens, 100)
    chars = size_tokens * CHARS_PER_TOKEN
    users = n_users if n_users is not None else default_users(chars)
    items: list[TaskItem] = []
    rs: RecordSet | None = None
    uc: UserCounts | None = None
    per = max(1, questions_per_context)
    for i in range(n):
        if i % per == 0:
            rs = generate_records(item_rng(NAME, seed, size_tokens, i), chars, users)
            uc = UserCounts(rs)
        assert rs is not None and uc is not None
        rng = item_rng(NAME + "/q", seed, size_tokens, i)
        t = template if template is not None else i % TEMPLATES
        q, gold = make_question(rng, uc, t, max_pairs)
        items.append(
            TaskItem(
                task=NAME,
                id=item_id(NAME, size_tokens, seed, i),
                size_tokens=context_chars(rs.text) // CHARS_PER_TOKEN,
                question=f"{describe_records()}\n\n{q.text()}",
                context=rs.text,
                answer=gold,
                answer_format=ANSWER_FORMAT,
                metadata={
                    "template": q.template,
                    "first": [c.to_dict() for c in q.first],
                    "second": None if q.second is None else [c.to_dict() for c in q.second],
                    "n_records": len(rs),
                    "n_users": len(uc.users),
                    "labels": rs.labels_string(),
                },
            )
        )
    return items


def score(item: TaskItem, prediction: str) -> float:
    """F1 of the predicted pair set against the gold set (pairs are unordered)."""
    gold = {(min(a, b), max(a, b)) for a, b in item.answer}  # type: ignore[union-attr]
    return f1(parse_pairs(prediction), gold)
