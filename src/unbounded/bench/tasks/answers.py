"""Parsing and normalising free-text predictions, shared by the task scorers.

Models wrap answers in prose, markdown and "Answer:" prefixes; each helper here pulls out the
part a scorer compares, and is deliberately lenient about formatting, never about content.
"""

from __future__ import annotations

import re
import string

_ANSWER_MARKER = re.compile(r"(?:final\s+)?answer\s*(?:is)?\s*[:：]", re.IGNORECASE)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT_TABLE = str.maketrans({c: " " for c in string.punctuation + "“”‘’`"})
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_PAIR = re.compile(r"\(\s*(?:user\s*)?(\d+)\s*[,;/]\s*(?:user\s*)?(\d+)\s*\)", re.IGNORECASE)


def strip_markup(text: str) -> str:
    """Drop markdown emphasis and code fences that models like to add around answers."""
    return text.replace("**", "").replace("__", "").replace("```", "").strip()


def answer_segment(prediction: str) -> str:
    """The text after the last ``Answer:`` marker, or the whole prediction when there is none."""
    text = strip_markup(prediction)
    last = None
    for m in _ANSWER_MARKER.finditer(text):
        last = m
    if last is not None:
        seg = text[last.end() :].strip()
        if seg:
            return seg
    return text


def normalize(text: str) -> str:
    """Lowercase, drop punctuation and English articles, collapse whitespace (SQuAD style)."""
    text = text.lower().translate(_PUNCT_TABLE)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def contains_phrase(haystack: str, phrase: str) -> bool:
    """Whether normalised ``phrase`` occurs in normalised ``haystack`` on word boundaries."""
    h, p = normalize(haystack), normalize(phrase)
    if not p:
        return False
    return f" {p} " in f" {h} "


def last_number(text: str) -> float | None:
    """The last number in ``text`` ("1,234" reads as 1234), or None."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    raw = found[-1].replace(",", "")
    try:
        return float(raw)
    except ValueError:
        return None


_LETTER_PATTERNS = [
    # "Answer: B", "answer is (B)", "Option B", "choice: B"
    re.compile(r"(?:answer|option|choice)\s*(?:is)?\s*[:：\-]?\s*[\(\[]?\s*([A-D])\b(?![a-z'])", re.IGNORECASE),
    # "(B)" or "[B]"
    re.compile(r"[\(\[]([A-D])[\)\]]"),
    # "B) foo", "B. foo", "B: foo" at the start of a line
    re.compile(r"(?m)^\s*([A-D])\s*[\).:]"),
]


def parse_choice_letter(prediction: str, letters: str = "ABCD") -> str | None:
    """The multiple-choice letter a prediction picks, or None when it does not pick one.

    Accepts "B", "(B)", "Answer: B", "The answer is B.", "B) foo", "**B**". When several patterns
    match, an explicit "answer" marker wins and its last occurrence counts.
    """
    text = strip_markup(prediction)
    stripped = text.strip().rstrip(".").strip()
    if len(stripped) == 1 and stripped.upper() in letters:
        return stripped.upper()
    for i, pat in enumerate(_LETTER_PATTERNS):
        hits = [m.group(1).upper() for m in pat.finditer(text)]
        hits = [h for h in hits if h in letters]
        if hits:
            # An explicit "answer: X" wins with its last mention; other shapes take the first.
            return hits[-1] if i == 0 else hits[0]
    # A short reply that is just a letter and a few words, e.g. "B - the second one".
    words = stripped.split()
    if words and len(words) <= 4:
        head = words[0].strip("().:,-").upper()
        if len(head) == 1 and head in letters:
            return head
    return None


def parse_pairs(prediction: str) -> set[tuple[int, int]]:
    """All ``(a, b)`` integer pairs in a prediction, each ordered lower id first."""
    out: set[tuple[int, int]] = set()
    for m in _PAIR.finditer(prediction):
        a, b = int(m.group(1)), int(m.group(2))
        if a != b:
            out.add((min(a, b), max(a, b)))
    return out


def f1(predicted: set, gold: set) -> float:
    if not predicted and not gold:
        return 1.0
    if not predicted or not gold:
        return 0.0
    hit = len(predicted & gold)
    if hit == 0:
        return 0.0
    precision = hit / len(predicted)
    recall = hit / len(gold)
    return 2 * precision * recall / (precision + recall)


def match_choice(segment: str, gold: str, choices: list[str]) -> bool:
    """Exact match after normalisation, or exactly one of the closed-set ``choices`` named and it is gold.

    The second rule accepts "The most common label is location." for gold "location" while
    rejecting answers that hedge between several labels.
    """
    if normalize(segment) == normalize(gold):
        return True
    named = {c for c in choices if contains_phrase(segment, c)}
    return named == {gold}
