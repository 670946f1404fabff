"""Ranked search, reading a region, and exact counting over the context: REPL helpers.

``search(query)`` ranks passages of the context with BM25 (Okapi; k1=1.2, b=0.75) and returns the best
ones with where they are; ``read(key, line=...)`` shows a region of a document with line numbers;
``count(pattern)`` counts matching lines or documents exactly. Identifiers are split for matching
(``TextWrapper`` also matches "text wrapper", ``parse_headers`` "parse headers"), so a question's
words find code. The index is built on the first search of a text and kept for the run.

Worker-side module: standard library only, no ``typing`` or ``dataclasses``.
"""

from __future__ import annotations

import math
import re
from collections import Counter, namedtuple
from collections.abc import Mapping

from .._lazy import TYPE_CHECKING
from .helpers import iter_docs

if TYPE_CHECKING:
    from typing import Any

#: Passages are about this many characters, cut at line ends.
PASSAGE_CHARS = 800
#: Words too common to rank by (English function words and Python keywords).
STOP_WORDS = _STOP = frozenset(
    ["a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "with", "from", "and", "or", "not", "is", "are", "was", "were", "be", "been", "it", "its", "this", "that", "these", "those", "what", "which", "who", "whom", "how", "many", "much", "does", "do", "did", "there", "their", "them", "they", "he", "she", "we", "you", "your", "as", "if", "then", "than", "so", "into", "out", "up", "down", "over", "under", "about", "all", "any", "each", "every", "some", "no", "can", "could", "would", "should", "will", "shall", "may", "might", "must", "give", "gives", "given", "use", "uses", "used", "name", "names", "def", "class", "self", "return", "import", "none", "true", "false"]
)

class Lines(str):
    """Text that shows as itself when it is the value of a cell's last line (not as a quoted repr)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


SearchHit = namedtuple("SearchHit", "key offset line score text")
SearchHit.__doc__ = """One ranked passage: ``key`` names the document (None for a str context), ``offset`` and
``line`` (1-based) say where the passage starts in it, ``text`` is the passage."""


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PART = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def name_parts(identifier: str) -> list[str]:
    """The lower-cased words an identifier is made of (``_DEFAULT_LIMIT`` → default, limit; ``TextWrapper`` →
    text, wrapper)."""
    return [w.lower() for w in _PART.findall(identifier)]


def term_counts(text: str) -> Counter:
    """Search terms of a text with their counts: whole identifiers and words, lower-cased, and the
    parts of identifiers (``TextWrapper`` → textwrapper, text, wrapper; ``parse_headers`` → parse_headers,
    parse, headers). Two regex passes in C; stop words dropped."""
    counts = Counter(map(str.lower, _IDENT.findall(text)))
    counts.update(w for w in map(str.lower, _PART.findall(text)) if len(w) > 1)
    for word in _STOP.intersection(counts):
        del counts[word]
    return counts


def terms(text: str) -> list[str]:
    """The distinct search terms of a text (see ``term_counts``)."""
    return list(term_counts(text))


class _Passage:
    __slots__ = ("key", "line", "offset", "text")

    def __init__(self, key: Any, offset: int, line: int, text: str) -> None:
        self.key = key
        self.offset = offset
        self.line = line
        self.text = text


class SearchIndex:
    """BM25 over passages of a text, a list or a dict of texts (nested values included)."""

    def __init__(self, data: Any, passage_chars: int = PASSAGE_CHARS) -> None:
        self.passages: list[_Passage] = []
        self.postings: dict[str, list[tuple[int, int]]] = {}
        lengths: list[int] = []
        for key, doc in iter_docs(data):
            for offset, line, text in _split(doc, passage_chars):
                index = len(self.passages)
                self.passages.append(_Passage(key, offset, line, text))
                counts = term_counts(text)
                lengths.append(sum(counts.values()) or 1)
                for term, tf in counts.items():
                    self.postings.setdefault(term, []).append((index, tf))
        self.lengths = lengths
        self.mean_length = (sum(lengths) / len(lengths)) if lengths else 1.0

    def search(self, query: str, k: int = 5) -> list[Any]:
        n = len(self.passages)
        scores: dict[int, float] = {}
        for term in terms(query):
            posting = self.postings.get(term)
            if not posting:
                continue
            idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
            for index, tf in posting:
                norm = tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * self.lengths[index] / self.mean_length))
                scores[index] = scores.get(index, 0.0) + idf * norm
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[: max(0, int(k))]
        out = []
        for index, score in best:
            p = self.passages[index]
            out.append(SearchHit(p.key, p.offset, p.line, round(score, 3), p.text))
        return out


def _split(doc: str, size: int) -> list[tuple[int, int, str]]:
    """(offset, first line, text) passages of about ``size`` characters, cut at line ends."""
    out = []
    start, line, n = 0, 1, len(doc)
    while start < n:
        end = min(start + size, n)
        if end < n:
            cut = doc.rfind("\n", start + size // 2, end)
            if cut != -1:
                end = cut + 1
        text = doc[start:end]
        if text.strip():
            out.append((start, line, text))
        line += text.count("\n")
        start = end
    return out


_INDEXES: dict[int, tuple[Any, SearchIndex]] = {}
#: Indexes kept at once: the context's, and a few texts searched besides it (one file of it, a variable).
_KEEP_INDEXES = 3


def search(query: str, text: Any, k: int = 5) -> list[Any]:
    """The ``k`` passages of ``text`` that best match ``query``'s words (BM25), best first."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError("search needs a query: the words to look for, e.g. search('default line width')")
    cached = _INDEXES.pop(id(text), None)
    if cached is None or cached[0] is not text:
        cached = (text, SearchIndex(text))
        while len(_INDEXES) >= _KEEP_INDEXES:  # the least recently searched goes
            _INDEXES.pop(next(iter(_INDEXES)))
    _INDEXES[id(text)] = cached
    return cached[1].search(query, k)


def read(data: Any, key: Any = None, line: int | None = None, *, before: int = 10, after: int = 40,
         max_chars: int = 6000) -> str:
    """A region of one document with line numbers: lines ``line - before`` to ``line + after``, or the
    whole document (at most ``max_chars``; what is left out is said) when no line is given.

    ``key`` names the document in a dict or list context (a search hit or a grep match works too).
    """  # fmt: skip
    if "key" in getattr(type(key), "_fields", ()):  # a SearchHit, GrepMatch or Definition
        hit = key
        key, line = hit.key, line if line is not None else hit.line
    doc = _document(data, key)
    lines = doc.splitlines()
    if line is None:
        first, last = 1, len(lines)
    else:
        first, last = max(1, int(line) - before), min(len(lines), int(line) + after)
    out, used = [], 0
    for number in range(first, last + 1):
        text = f"{number}: {lines[number - 1]}"
        if used + len(text) > max_chars:
            out.append(f"[... lines {number}-{last} not shown: read(key, line={number}) continues]")
            break
        out.append(text)
        used += len(text) + 1
    return Lines("\n".join(out))


def _document(data: Any, key: Any) -> str:
    if key is None:
        if isinstance(data, str):
            return data
        raise ValueError("read needs a key: which document of the context to read")
    if isinstance(key, tuple):
        for step in key:
            data = data[step]
        return data if isinstance(data, str) else str(data)
    if isinstance(data, Mapping):
        if key not in data:
            raise KeyError(f"no document {key!r} in the context")
        value = data[key]
    elif isinstance(data, list | tuple):
        value = data[int(key)]
    else:
        raise KeyError("the context is one text; read(line=...) without a key reads it")
    return value if isinstance(value, str) else str(value)


def count(pattern: str, data: Any, *, per: str = "line", ignore_case: bool = False) -> int:
    """How many lines (``per="line"``) or documents (``per="doc"``) of ``data`` match the regex. Exact: never capped."""
    if per not in ("line", "doc"):
        raise ValueError("count: per must be 'line' or 'doc'")
    rx = re.compile(pattern, re.MULTILINE | (re.IGNORECASE if ignore_case else 0))
    total = 0
    for _key, doc in iter_docs(data):
        if per == "doc":
            total += 1 if rx.search(doc) else 0
            continue
        last_end = -1
        for m in rx.finditer(doc):
            if m.start() <= last_end:
                continue
            total += 1
            end = doc.find("\n", m.start())
            last_end = len(doc) if end == -1 else end
    return total
