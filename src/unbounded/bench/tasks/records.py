"""OOLONG-style records: ``Date: <date> || User: <id> || Instance: <question>``, one per line.

Each instance is a general-knowledge question whose TREC coarse class is hidden; the generator keeps
the class, user and day of every record in columns so questions can be answered exactly.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import Counter
from dataclasses import dataclass

from .trec import CLASS_HINTS, CLASSES, question_pool

START = dt.date(2021, 1, 1)
END = dt.date(2023, 12, 31)
DAYS = (END - START).days + 1
_BATCH = 4096


def day_date(day: int) -> dt.date:
    return START + dt.timedelta(days=day)


def format_day(day: int) -> str:
    """The record date format, e.g. ``Mar 05, 2022``."""
    return day_date(day).strftime("%b %d, %Y")


def parse_record_date(text: str) -> int:
    return (dt.datetime.strptime(text, "%b %d, %Y").date() - START).days


def month_key(day: int) -> str:
    d = day_date(day)
    return f"{d.year:04d}-{d.month:02d}"


def month_name(key: str) -> str:
    """``2022-03`` -> ``March 2022``."""
    year, month = key.split("-")
    return f"{dt.date(int(year), int(month), 1):%B} {year}"


@dataclass(slots=True)
class RecordSet:
    """Generated records as text plus the hidden columns. ``labels[i]`` indexes ``CLASSES``."""

    text: str
    labels: list[int]
    users: list[int]
    days: list[int]
    user_ids: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def label_counts(self, mask: list[bool] | None = None) -> Counter[int]:
        if mask is None:
            return Counter(self.labels)
        return Counter(lab for lab, keep in zip(self.labels, mask, strict=True) if keep)

    def labels_string(self) -> str:
        """Labels as one digit per record: compact enough to keep in item metadata."""
        return "".join(map(str, self.labels))


def generate_records(rng: random.Random, chars: int, n_users: int | None = None) -> RecordSet:
    """Records totalling about ``chars`` characters (newline-joined).

    Class frequencies and user activity are skewed per seed, as in real logs, so "most common"
    questions have clear answers. ``n_users`` defaults to one user per ~20 records (at least 8).
    """
    weights = [rng.gammavariate(2.0, 1.0) + 0.2 for _ in CLASSES]
    class_cum = list(itertools.accumulate(weights))
    est_records = max(chars // 95, 1)
    pools = question_pool(rng, per_class=min(3000, max(200, est_records // 2)))
    if n_users is None:
        n_users = max(8, min(est_records // 20, 5000))
    user_ids = sorted(rng.sample(range(10_000, 100_000), n_users))
    user_cum = list(itertools.accumulate(rng.lognormvariate(0.0, 0.7) for _ in user_ids))

    lines: list[str] = []
    labels: list[int] = []
    users: list[int] = []
    days: list[int] = []
    day_text = [format_day(d) for d in range(DAYS)]
    total = -1  # no newline before the first line
    classes = range(len(CLASSES))
    while total < chars:
        batch_labels = rng.choices(classes, cum_weights=class_cum, k=_BATCH)
        batch_users = rng.choices(user_ids, cum_weights=user_cum, k=_BATCH)
        rand = rng.random
        for lab, uid in zip(batch_labels, batch_users, strict=True):
            day = int(rand() * DAYS)
            pool = pools[lab]
            line = f"Date: {day_text[day]} || User: {uid} || Instance: {pool[int(rand() * len(pool))]}"
            if total + 1 + len(line) > chars and lines and chars - total < (len(line) + 1) / 2:
                total = chars  # stop at the record boundary nearest the target
                break
            lines.append(line)
            labels.append(lab)
            users.append(uid)
            days.append(day)
            total += 1 + len(line)
            if total >= chars:
                break
    return RecordSet("\n".join(lines), labels, users, days, user_ids)


def describe_records() -> str:
    """The explanation of the record format and classes that precedes every OOLONG question."""
    hints = "; ".join(f"'{c}' ({CLASS_HINTS[c]})" for c in CLASSES)
    return (
        "The context is a list of records, one per line, in the form "
        "`Date: <date> || User: <user id> || Instance: <question>`. Each instance is a "
        "general-knowledge question that belongs to exactly one of six categories, according to "
        "the kind of answer it asks for: "
        f"{hints}. The category is not written in the records; you must infer it from each "
        "question's text."
    )
