"""Search across a whole trace: every string value of every event, case-insensitively.

For a plain ASCII query the file is scanned as bytes with a compiled pattern (fast on 100 MB), and
only lines that match are decoded and checked value by value, so a hit in a JSON key or an escape
sequence is not reported. A query with characters JSON escapes or re-encodes (quotes, backslashes,
control characters, non-ASCII text) decodes every line instead: slower, never wrong.
"""

from __future__ import annotations

import mmap
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .index import TraceIndex, loads

SNIPPET = 60


@dataclass(slots=True)
class Hit:
    key: str
    type: str
    field: str
    snippet: str
    at: int  # where the match starts in the snippet

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.key, "t": self.type, "field": self.field, "snippet": self.snippet, "at": self.at}


def search(index: TraceIndex, query: str, limit: int = 200) -> dict[str, Any]:
    """Nodes whose events hold ``query``; one hit per node, in file order."""
    query = query.strip()
    if not query:
        return {"q": query, "hits": [], "more": False}
    index.refresh()
    needle = query.casefold()
    hits: list[Hit] = []
    seen: set[str] = set()
    more = False
    for key, line in _candidates(index, query):
        if key in seen:
            continue
        event = loads(line)
        found = _find(event, needle) if isinstance(event, dict) else None
        if found is None:
            continue
        if len(hits) >= limit:
            more = True
            break
        seen.add(key)
        field, text, pos = found
        node = index.nodes.get(key)
        lo = max(0, pos - SNIPPET)
        snippet = ("…" if lo else "") + text[lo : pos + len(query) + SNIPPET]
        at = pos - lo + (1 if lo else 0)
        hits.append(Hit(key, node.type if node else "?", field, snippet.replace("\n", " ⏎ "), at))
    return {"q": query, "hits": [h.to_dict() for h in hits], "more": more}


def _fast(query: str) -> bool:
    return query.isascii() and not any(c in query for c in '"\\') and all(ord(c) >= 0x20 for c in query)


def _candidates(index: TraceIndex, query: str) -> Iterator[tuple[str, bytes]]:
    lines = index.lines()
    size = index.size
    if not lines or size == 0:
        return
    with open(index.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if not _fast(query):
            for off, length, key in lines:
                yield key, bytes(mm[off : off + length])
            return
        offsets = [off for off, _, _ in lines]
        pattern = re.compile(re.escape(query.encode("ascii")), re.IGNORECASE)
        last = -1
        for m in pattern.finditer(mm, 0, size):
            i = bisect_right(offsets, m.start()) - 1
            if i < 0 or i == last:
                continue
            off, length, key = lines[i]
            if m.start() >= off + length:  # in a line the index skipped (blank or not JSON)
                continue
            last = i
            yield key, bytes(mm[off : off + length])


def _find(value: Any, needle: str, path: str = "") -> tuple[str, str, int] | None:
    """(field path, text, position) of the first string value holding ``needle`` (casefolded)."""
    if isinstance(value, str):
        pos = value.casefold().find(needle)
        if pos >= 0:
            # casefold can change lengths (ß → ss); map back approximately by ratio when it did
            if len(value.casefold()) != len(value):
                pos = min(len(value) - 1, int(pos * len(value) / max(1, len(value.casefold()))))
            return path or "(value)", value, pos
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("parent", "ts") and path == "":
                continue
            found = _find(v, needle, f"{path}.{k}" if path else str(k))
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _find(v, needle, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = repr(value)
        return (path, text, text.find(needle)) if needle in text else None
    return None
