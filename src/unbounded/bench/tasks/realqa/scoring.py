"""Answer formats and scorers for the evaluation set, one per kind of answer.

* ``number``: the last number of the answer; exact, or within the question's relative tolerance.
* ``value``: a value written in code; exact after dropping quotes and backticks, or equal once
  normalised (case, punctuation and spacing).
* ``path`` / ``path_line``: a key of the context (``email/utils.py``, ``LGPL-2``), also accepted
  with a folder prefix (``Lib/email/utils.py``, an absolute path); naming another file as well
  scores 0. ``path_line`` also needs the line, within ``LINE_SLACK`` lines.
* ``set``: set F1 between the listed items and the gold items.
* ``name``: normalised exact match, or a short answer that holds the gold as a whole phrase.

Every scorer reads the part after the last ``Answer:`` marker when there is one.
"""

from __future__ import annotations

import re
from typing import Any

from ..answers import answer_segment, contains_phrase, f1, last_number, normalize, strip_markup

LINE_SLACK = 2
SHORT_ANSWER_WORDS = 12

_FORMATS = {
    "number": "Give the number alone on the last line, as `Answer: <number>`.",
    "value": "Give the value as the source writes it, on the last line as `Answer: <value>`.",
    "path": "Give the {noun} exactly as it is written among the context's keys, on the last line as `Answer: <{noun}>`.",
    "path_line": (
        "Give the path as it is written among the context's keys and the line number, on the last line as "
        "`Answer: <path>:<line>`."
    ),
    "set": "List every {noun}, separated by commas, on the last line as `Answer: <{noun}>, <{noun}>, ...`.",
    "name": "Give only the {noun}'s name, on the last line as `Answer: <{noun}>`.",
}
_QUOTES = "`'\"“”‘’"
_KEY_TOKEN = re.compile(r"[\w./+@-]+")
_PATH_LINE = re.compile(r"([\w./+@-]+\.py)\b[\s`'\"]*(?:[:,#]|\bat\b|\bon\b)?\s*(?:line\s*)?(\d+)", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def answer_format(kind: str, noun: str = "") -> str:
    return _FORMATS[kind].format(noun=noun or "path")


def _unquote(text: str) -> str:
    text = strip_markup(text).strip()
    text = text.rstrip(".").strip()
    return text.strip(_QUOTES).strip()


def score_number(prediction: str, gold: float, tolerance: float = 0.0) -> float:
    y = last_number(answer_segment(prediction))
    if y is None:
        return 0.0
    if tolerance <= 0:
        return 1.0 if y == float(gold) else 0.0
    return 1.0 if abs(y - float(gold)) <= tolerance * abs(float(gold)) else 0.0


def score_value(prediction: str, gold: str) -> float:
    seg = answer_segment(prediction)
    first = seg.strip().splitlines()[0] if seg.strip() else ""
    for candidate in (seg, first):
        if _unquote(candidate) == gold or (normalize(candidate) and normalize(candidate) == normalize(gold)):
            return 1.0
    return 0.0


def _key_matches(token: str, gold: str) -> bool:
    token = token.strip(_QUOTES).rstrip(".,;:)").lstrip("(")
    if token.startswith("./"):
        token = token[2:]
    return token == gold or token.endswith("/" + gold)


def score_path(prediction: str, gold: str) -> float:
    seg = strip_markup(answer_segment(prediction))
    tokens = _KEY_TOKEN.findall(seg)
    hits = [t for t in tokens if _key_matches(t, gold)]
    if not hits:
        return 0.0
    gold_is_file = gold.endswith(".py")
    others = [t for t in tokens if t not in hits and gold_is_file and t.rstrip(".,;:").endswith(".py")]
    return 0.0 if others else 1.0


def score_path_line(prediction: str, gold: str) -> float:
    path, _, line = gold.rpartition(":")
    seg = strip_markup(answer_segment(prediction))
    found = [(p, int(n)) for p, n in _PATH_LINE.findall(seg)]
    if not found:
        return 0.0
    if {p for p, _ in found if not _key_matches(p, path)}:
        return 0.0
    return 1.0 if any(_key_matches(p, path) and abs(n - int(line)) <= LINE_SLACK for p, n in found) else 0.0


def normalize_item(item: str, style: str) -> str:
    """One listed item as the set scorer compares it."""
    text = _BULLET.sub("", item)
    text = _unquote(text).strip().rstrip(";:,").strip()
    if style == "name":
        text = text.removesuffix("()")
        if "." in text:
            text = text.rsplit(".", 1)[1]
    elif style == "path":
        text = text.removeprefix("./").removesuffix(".py")
    return text.lower()


def split_items(segment: str) -> list[str]:
    """Items of a listed answer: comma-, semicolon- or line-separated (a bulleted list works too)."""
    text = strip_markup(segment).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    parts = re.split(r"[,;\n]|\band\b", text)
    return [p for p in (x.strip() for x in parts) if p]


def score_set(prediction: str, gold: list[str], style: str = "name") -> float:
    predicted = {normalize_item(x, style) for x in split_items(answer_segment(prediction))}
    predicted.discard("")
    return f1(predicted, {normalize_item(g, style) for g in gold})


def score_name(prediction: str, gold: str) -> float:
    seg = answer_segment(prediction)
    if normalize(seg) == normalize(gold):
        return 1.0
    return 1.0 if len(normalize(seg).split()) <= SHORT_ANSWER_WORDS and contains_phrase(seg, gold) else 0.0


def score_kind(kind: str, prediction: str, gold: Any, *, tolerance: float = 0.0, items: str = "name") -> float:
    if kind == "number":
        return score_number(prediction, gold, tolerance)
    if kind == "value":
        return score_value(prediction, str(gold))
    if kind == "path":
        return score_path(prediction, str(gold))
    if kind == "path_line":
        return score_path_line(prediction, str(gold))
    if kind == "set":
        return score_set(prediction, list(gold), items)
    if kind == "name":
        return score_name(prediction, str(gold))
    raise ValueError(f"unknown answer kind {kind!r}")
