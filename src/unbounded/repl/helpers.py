"""Small, fast helpers available inside the REPL (``grep``, ``chunks``) and the final-value formatter.

This module is imported by the REPL worker, so it must stay free of engine imports.
"""

from __future__ import annotations

import json
import re
from collections import namedtuple
from collections.abc import Mapping

from .._lazy import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


class GrepMatch(namedtuple("GrepMatch", "key offset line match text")):
    """One regex hit. ``offset`` is the character offset of the match in its text; ``key`` names the
    document (dict key or list index) when grepping a collection; ``line`` is the hit's line number
    (1-based) and ``text`` the matching line, with ``context_lines`` around it when asked.

    (``collections.namedtuple``, not ``typing.NamedTuple``: the worker stays free of ``typing``.)"""

    __slots__ = ()

    def __repr__(self) -> str:
        where = f"{self.key!r} " if self.key is not None else ""
        return f"<{where}line {self.line} @{self.offset}: {self.text!r}>"


class GrepResult(list):
    """What ``grep`` returns: a list of ``GrepMatch``. ``total`` is how many matches there are in all;
    when the list was capped at ``max_matches`` it holds only the first ones (``capped`` is True) and
    says so when printed, so the length of a capped result is never mistaken for the count."""

    __slots__ = ("total",)

    def __init__(self, matches: list[GrepMatch] = (), total: int | None = None) -> None:  # type: ignore[assignment]
        super().__init__(matches)
        self.total = len(self) if total is None else total

    @property
    def capped(self) -> bool:
        return self.total > len(self)

    def __repr__(self) -> str:
        text = list.__repr__(self)
        if self.capped:
            text += (
                f"  [capped: the first {len(self):,} of {self.total:,} matches; .total is the count, "
                "max_matches=None returns them all]"
            )
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (GrepResult, (list(self), self.total))


def iter_docs(text: Any) -> Iterator[tuple[Any, str]]:
    """(key, text) for every string in ``text``: itself, a list's items, a dict's values, nested."""
    if isinstance(text, str):
        yield None, text
    elif isinstance(text, Mapping):
        for k, v in text.items():
            yield from ((k if sub is None else (k, sub), t) for sub, t in iter_docs(v))
    elif isinstance(text, list | tuple):
        for i, v in enumerate(text):
            yield from ((i if sub is None else (i, sub), t) for sub, t in iter_docs(v))
    else:
        yield None, str(text)


def grep(
    pattern: str,
    text: Any = None,
    context_lines: int = 0,
    *,
    ignore_case: bool = False,
    max_matches: int | None = 1000,
) -> GrepResult:
    """Find regex ``pattern`` in ``text`` (default: the whole ``context``; str, list or dict).

    Returns a ``GrepResult`` of up to ``max_matches`` (None: no cap) GrepMatch(key, offset, line,
    match, text), one per matching line, where ``text`` is the matching line plus ``context_lines``
    lines either side; ``.total`` counts every matching line even past the cap. Fast on 100 MB
    inputs: one regex scan, line numbers computed incrementally.
    """
    if text is None:
        raise TypeError("grep needs a text to search (inside the REPL it defaults to `context`)")
    flags = re.IGNORECASE if ignore_case else 0
    rx = re.compile(pattern, flags | re.MULTILINE)
    out: list[GrepMatch] = []
    total = 0
    cap = None if max_matches is None else max(0, int(max_matches))
    for key, doc in iter_docs(text):
        last_pos = 0
        line_no = 1
        last_line_end = -1
        for m in rx.finditer(doc):
            start = m.start()
            if start < last_line_end:  # one hit per line is enough
                continue
            total += 1
            if cap is not None and len(out) >= cap:  # past the cap: only count the line
                le = doc.find("\n", start)
                last_line_end = len(doc) if le == -1 else le
                continue
            line_no += doc.count("\n", last_pos, start)
            last_pos = start
            ls = doc.rfind("\n", 0, start) + 1
            le = doc.find("\n", start)
            le = len(doc) if le == -1 else le
            last_line_end = le
            s, e = ls, le
            for _ in range(max(0, context_lines)):
                if s > 0:
                    s = doc.rfind("\n", 0, s - 1) + 1
                if e < len(doc):
                    nxt = doc.find("\n", e + 1)
                    e = len(doc) if nxt == -1 else nxt
            snippet = doc[s:e]
            if len(snippet) > 2000:
                rel = start - s
                snippet = snippet[max(0, rel - 500) : rel + 1000]
            out.append(GrepMatch(key, start, line_no, m.group(0)[:500], snippet))
    return GrepResult(out, total)


def chunks(text: Any, size: int, overlap: int = 0) -> list[Any]:
    """Split ``text`` into pieces of ``size`` characters (str) or ``size`` items (list / dict items),
    consecutive pieces sharing ``overlap``. A str is cut at the last newline inside a piece when one
    exists in its second half, so lines stay whole."""
    if size <= 0:
        raise ValueError("chunks: size must be positive")
    if overlap < 0 or overlap >= size:
        raise ValueError("chunks: overlap must be >= 0 and smaller than size")
    if isinstance(text, Mapping):
        items = list(text.items())
        step = size - overlap
        return [dict(items[i : i + size]) for i in range(0, max(len(items) - overlap, 1), step)]
    if isinstance(text, list | tuple):
        step = size - overlap
        return [list(text[i : i + size]) for i in range(0, max(len(text) - overlap, 1), step)]
    text = str(text)
    pieces: list[str] = []
    start = 0
    n = len(text)
    while start < n:
        end = min(start + size, n)
        if end < n:
            cut = text.rfind("\n", start + size // 2, end)
            if cut != -1:
                end = cut + 1
        pieces.append(text[start:end])
        if end >= n:
            break
        start = max(end - overlap, start + 1)
    return pieces


def format_final(value: Any) -> str:
    """The answer string for ``FINAL(value)``: str as is, JSON for plain data, else ``repr``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) or value is None:
        return str(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=_no_default)
    except (TypeError, ValueError):
        try:
            return str(value)
        except Exception:
            return object.__repr__(value)


def _no_default(obj: Any) -> Any:
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError


def describe_value(value: Any) -> str:
    """Type and size of a value, for SHOW_VARS."""
    t = type(value).__name__
    try:
        if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
            return f"{t}, len {len(value):,}"
    except Exception:
        pass
    return t
