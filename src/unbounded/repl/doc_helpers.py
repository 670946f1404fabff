"""REPL helpers that address one part of a loaded document: a page of a PDF, a table of a database.

The loaders (``unbounded.loaders``) lay documents out in plain data, and this module is the one home
of that layout, read here and written there:

- Paged text (PDF pages, EPUB sections) is one str in which every part starts with a line of its own,
  ``=== page N ===`` (``=== section N ===`` for EPUB), N counting from 1. So ``grep(r"=== page 12 ===")``
  finds a page and any grep hit can be placed on its page with ``page_of(key, offset)``.
- Records (CSV, TSV, JSON arrays, JSONL, Parquet, Arrow) are a list of dicts, one per row.
- A file of several tables (SQLite, XLSX) is a dict ``{table name: list of dicts}``.

A "document" argument is a key of ``context`` (``"docs/report.pdf"``; a unique file name such as
``"report.pdf"`` or a grep hit's key works too), a text or table passed directly, or None for the
whole context when it is one document. ``"db.sqlite/users"`` names a table inside a file.

Imported by the REPL worker, so it uses only the standard library modules the other helpers use: no
``typing``, no ``dataclasses``, nothing third-party.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .._lazy import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: The line that starts each part of a paged document; ``unit`` is ``page`` or ``section``.
PART_MARK = "=== {unit} {n} ==="
PART_UNITS = ("page", "section")
_MARK_RE = re.compile(r"^=== (page|section) (\d+) ===$", re.MULTILINE)

#: The names registered in the REPL namespace (see ``bind``).
NAMES = ("pages", "page", "page_of", "table", "tables")


def part_mark(n: int, unit: str = "page") -> str:
    """The line that starts part ``n`` of a paged document."""
    return PART_MARK.format(unit=unit, n=n)


def _name(doc: Any) -> str:
    return "the context" if doc is None else repr(doc) if not isinstance(doc, str) or len(doc) < 80 else "the text"


def resolve(context: Any, doc: Any = None) -> Any:
    """The document ``doc`` names inside ``context`` (see the module docstring for what names one)."""
    if doc is None:
        return context
    if isinstance(doc, Mapping | list):
        return doc
    if isinstance(doc, tuple):  # a grep hit's key inside a nested context: (key, sub-key, ...)
        value = context
        for step in doc:
            value = resolve(value, step)
        return value
    if isinstance(context, Mapping):
        if doc in context:
            return context[doc]
        if isinstance(doc, str):
            head, sep, tail = doc.rpartition("/")
            if sep and isinstance(context.get(head), Mapping) and tail in context[head]:
                return context[head][tail]
            ends = [k for k in context if isinstance(k, str) and k.endswith("/" + doc)]
            if len(ends) == 1:
                return context[ends[0]]
            if "\n" in doc or _MARK_RE.search(doc):
                return doc  # a text passed directly
            keys = [k for k in context if isinstance(k, str)]
            if len(ends) > 1:
                raise KeyError(
                    f"{doc!r} matches {len(ends)} documents ({', '.join(map(repr, ends[:5]))}); give the full key"
                )
            shown = ", ".join(repr(k) for k in keys[:5])
            raise KeyError(f"no document {doc!r} in context; its keys look like {shown} (list(context) has them all)")
        raise KeyError(f"no document {doc!r} in context")
    if isinstance(context, list) and isinstance(doc, int):
        if not -len(context) <= doc < len(context):
            raise IndexError(f"document {doc} is out of range: context holds {len(context)} items")
        return context[doc]
    if isinstance(doc, str):
        return doc
    raise KeyError(f"cannot find document {doc!r}: pass a key of context, a text, or None for the whole context")


def _text_of(context: Any, doc: Any) -> str:
    value = resolve(context, doc)
    if not isinstance(value, str):
        kind = "a table (use table())" if isinstance(value, list | Mapping) else type(value).__name__
        raise TypeError(f"{_name(doc)} is {kind}, not a paged text")
    return value


def split_parts(text: str) -> list[tuple[int, str]]:
    """``(number, text)`` for each part of a paged text, without the mark lines; ``[(1, text)]`` if unmarked."""
    marks = list(_MARK_RE.finditer(text))
    if not marks:
        return [(1, text)]
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out.append((int(m.group(2)), text[m.end() : end].strip("\n")))
    return out


def pages(context: Any, doc: Any = None) -> list[str]:
    """The pages (or EPUB sections) of a document as a list of texts: ``pages(doc)[0]`` is page 1.

    ``doc`` is a key of context ("docs/report.pdf", or just "report.pdf"), or None for the whole context.
    A text without page marks is one page."""
    return [text for _, text in split_parts(_text_of(context, doc))]


def page(context: Any, doc: Any, n: int | None = None) -> str:
    """Page (or EPUB section) ``n`` of a document, counting from 1: ``page("report.pdf", 3)``.

    When the context itself is one paged document, ``page(3)`` is its page 3."""
    if n is None:
        if not isinstance(doc, int) or isinstance(doc, bool):
            raise TypeError("page(doc, n): give the document and the page number, e.g. page('report.pdf', 3)")
        doc, n = None, doc
    text = _text_of(context, doc)
    n = int(n)
    found = None
    for m in _MARK_RE.finditer(text):
        if found is not None:
            return text[found : m.start()].strip("\n")
        if int(m.group(2)) == n:
            found = m.end()
    if found is not None:
        return text[found:].strip("\n")
    numbers = [int(m.group(2)) for m in _MARK_RE.finditer(text)]
    if not numbers:
        if n == 1:
            return text
        raise ValueError(f"{_name(doc)} has no page marks ('=== page N ==='): it is one page; read it whole")
    raise ValueError(f"{_name(doc)} has pages {numbers[0]}-{numbers[-1]}; there is no page {n}")


def page_of(context: Any, doc: Any, offset: int | None = None) -> int:
    """The page (or section) number holding character ``offset`` of a document: for a grep hit ``m``,
    ``page_of(m.key, m.offset)``. Text before the first page mark, or without marks, is page 1."""
    if offset is None:
        if not isinstance(doc, int) or isinstance(doc, bool):
            raise TypeError(
                "page_of(doc, offset): give the document and a character offset, e.g. page_of(m.key, m.offset)"
            )
        doc, offset = None, doc
    text = _text_of(context, doc)
    number = 1
    for m in _MARK_RE.finditer(text, 0, max(0, int(offset)) + 1):
        if m.start() > offset:
            break
        number = int(m.group(2))
    return number


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and (not value or isinstance(value[0], Mapping))


def tables(context: Any, doc: Any = None) -> list[str]:
    """The names ``table()`` takes: keys whose value is a table, and "file/table" for each table of
    a file that holds several (SQLite, XLSX). A context that is itself one table gives []: use table()."""
    value = resolve(context, doc)
    if not isinstance(value, Mapping):
        return []
    names = []
    for key, item in value.items():
        if _is_records(item):
            names.append(key)
        elif isinstance(item, Mapping):
            names.extend(f"{key}/{sub}" for sub, rows in item.items() if _is_records(rows))
    return names


def table(context: Any, doc: Any = None, name: str | None = None) -> list[Any]:
    """The rows of a table as a list of dicts: ``table("sales.csv")``, ``table("shop.sqlite", "orders")``
    or ``table("shop.sqlite/orders")``; ``table()`` when the context itself is one table."""
    value = resolve(context, doc)
    if name is not None:
        if not isinstance(value, Mapping):
            raise TypeError(f"{_name(doc)} holds one table, not named ones: call table({doc!r})")
        if name not in value:
            raise KeyError(f"{_name(doc)} has no table {name!r}; its tables: {', '.join(map(repr, value))}")
        value = value[name]
    if _is_records(value):
        return value
    if isinstance(value, Mapping):
        found = tables(value)
        if len(found) == 1:
            return table(value, found[0])
        if found:
            shown = ", ".join(repr(t) for t in found[:10]) + (" …" if len(found) > 10 else "")
            raise ValueError(f"{_name(doc)} holds {len(found)} tables ({shown}): name one, e.g. table({found[0]!r})")
    raise TypeError(f"{_name(doc)} is not a table (tables are lists of dicts; tables() lists them)")


def bind(get_context: Callable[[], Any]) -> dict[str, Callable[..., Any]]:
    """The helpers as REPL names, each reading ``context`` through ``get_context`` when called."""

    def _pages(doc: Any = None) -> list[str]:
        return pages(get_context(), doc)

    def _page(doc: Any, n: int | None = None) -> str:
        return page(get_context(), doc, n)

    def _page_of(doc: Any, offset: int | None = None) -> int:
        return page_of(get_context(), doc, offset)

    def _table(doc: Any = None, name: str | None = None) -> list[Any]:
        return table(get_context(), doc, name)

    def _tables(doc: Any = None) -> list[str]:
        return tables(get_context(), doc)

    bound = {"pages": _pages, "page": _page, "page_of": _page_of, "table": _table, "tables": _tables}
    originals = {"pages": pages, "page": page, "page_of": page_of, "table": table, "tables": tables}
    for name, fn in bound.items():
        fn.__name__ = fn.__qualname__ = name
        fn.__doc__ = originals[name].__doc__
    return bound
