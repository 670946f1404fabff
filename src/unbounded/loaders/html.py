"""HTML (selectolax) as readable, Markdown-like text; EPUB as its chapters in reading order.

Scripts, styles, templates, forms' hidden parts and the ``<head>`` are dropped (the ``<title>`` is
kept as the document's title). Headings become ``#`` lines, links ``[text](href)``, list items
``- ``, table rows ``a | b``, images ``[image: alt]``, ``<pre>`` keeps its spacing. The tree is
walked without recursion, so deeply nested markup cannot exhaust the stack.

An EPUB's chapters come from its OPF spine, each starting with a line ``=== section N ===``.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
import xml.etree.ElementTree as ET
import zipfile
from typing import Any

from ..errors import ContextError
from ..repl.doc_helpers import part_mark
from .archives import check_zip_expansion
from .base import DocumentInfo, LoadResult, LoadState, Source, single
from .detect import require
from .text import decode_text

_DROP = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "head",
        "svg",
        "canvas",
        "iframe",
        "object",
        "embed",
        "select",
        "button",
    }
)
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div", "dl",
        "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "html", "main", "nav", "ol",
        "p", "section", "summary", "table", "tbody", "thead", "tfoot", "ul",
    }
)  # fmt: skip
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_SPACES = re.compile(r"\s+")
_BLANKS = re.compile(r"\n{3,}")


class _Writer:
    """Collects text, turning block boundaries into at most one blank line."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.breaks = 0  # newlines owed before the next text
        self.at_line_start = True

    def text(self, s: str) -> None:
        if not s:
            return
        if self.breaks:
            self.parts.append("\n" * self.breaks)
            self.breaks = 0
            self.at_line_start = True
        if self.at_line_start:
            s = s.lstrip(" ")
            if not s:
                return
        self.parts.append(s)
        self.at_line_start = s.endswith("\n")

    def newline(self, n: int = 1) -> None:
        if self.parts:
            self.breaks = max(self.breaks, n)

    def result(self) -> str:
        lines = (line.rstrip() for line in "".join(self.parts).split("\n"))
        return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(markup: str) -> tuple[str, str | None, int]:
    """``(text, title, links)`` of an HTML document."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    title_node = tree.css_first("title")
    title = " ".join(title_node.text().split()) or None if title_node is not None else None
    out = _Writer()
    links = 0
    pre = 0
    cells: list[int] = []  # cells written so far in each open table row
    # (node, closing): a closing entry runs the element's end action.
    stack: list[tuple[Any, str | None]] = [(tree.root, None)] if tree.root is not None else []
    while stack:
        node, closing = stack.pop()
        if closing is not None:
            if closing == "pre":
                pre -= 1
                out.newline(2)
            elif closing.startswith("]("):
                out.text(closing + ")")
            elif closing == "row":
                if cells:
                    cells.pop()
                out.newline(1)
            elif closing == "block":
                out.newline(2)
            elif closing == "line":
                out.newline(1)
            continue
        tag = node.tag
        if tag == "-text":
            raw = node.text_content or ""
            out.text(raw if pre else _SPACES.sub(" ", raw))
            continue
        if tag in _DROP or tag.startswith("-") or tag.startswith("!"):
            continue
        end: str | None = None
        if tag in _HEADINGS:
            out.newline(2)
            out.text("#" * _HEADINGS[tag] + " ")
            end = "block"
        elif tag == "li":
            out.newline(1)
            out.text("- ")
            end = "line"
        elif tag == "tr":
            out.newline(1)
            cells.append(0)
            end = "row"
        elif tag in ("td", "th"):
            if cells:
                if cells[-1]:
                    out.text(" | ")
                cells[-1] += 1
        elif tag == "br":
            out.newline(1)
        elif tag == "hr":
            out.newline(2)
            out.text("---")
            out.newline(2)
        elif tag == "pre":
            out.newline(2)
            pre += 1
            end = "pre"
        elif tag == "img":
            alt = (node.attributes.get("alt") or "").strip()
            if alt:
                out.text(f"[image: {' '.join(alt.split())}]")
        elif tag == "a":
            href = (node.attributes.get("href") or "").strip()
            if href and not href.startswith(("#", "javascript:")):
                links += 1
                out.text("[")
                end = f"]({href}"
        elif tag in _BLOCK:
            out.newline(2)
            end = "block"
        if end is not None:
            stack.append((node, end))
        children = []
        child = node.child
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend((c, None) for c in reversed(children))
    return out.result(), title, links


def load_html(src: Source, state: LoadState) -> LoadResult:
    require("selectolax", "selectolax", "docs", "HTML files")
    notes: list[str] = []
    markup = decode_text(src.read(), state, notes)
    text, title, links = html_to_text(markup)
    doc = DocumentInfo(src.name, "html", len(text), src.size, title=title, notes=notes)
    if links:
        doc.notes.append(f"{links} link(s), written [text](href)")
    return single(text, doc)


# -- EPUB -------------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def load_epub(src: Source, state: LoadState) -> LoadResult:
    require("selectolax", "selectolax", "docs", "EPUB files")
    with src.open() as fh:
        check_zip_expansion(fh, state)
        fh.seek(0)
        try:
            with zipfile.ZipFile(fh) as zf:
                spine, title = _spine(zf)
                parts = []
                for n, name in enumerate(spine, 1):
                    try:
                        markup = zf.read(name).decode("utf-8", "replace")
                    except KeyError:
                        continue
                    text, _, _ = html_to_text(markup)
                    parts.append(f"{part_mark(n, 'section')}\n{text}")
        except (zipfile.BadZipFile, ET.ParseError, KeyError, OSError, ValueError) as exc:
            raise ContextError(f"damaged EPUB ({type(exc).__name__}: {exc}); convert it again") from exc
    text = "\n\n".join(parts)
    doc = DocumentInfo(src.name, "epub", len(text), src.size, pages=len(parts), title=title)
    doc.notes.append("one '=== section N ===' part per chapter file, in reading order")
    return single(text, doc)


def _spine(zf: zipfile.ZipFile) -> tuple[list[str], str | None]:
    """The chapter files of an EPUB in reading order, and its title."""
    container = ET.fromstring(zf.read("META-INF/container.xml"))
    rootfile = next((el.get("full-path") for el in container.iter() if _local(el.tag) == "rootfile"), None)
    if not rootfile:
        raise ValueError("META-INF/container.xml names no package file")
    opf = ET.fromstring(zf.read(rootfile))
    base = posixpath.dirname(rootfile)
    manifest = {el.get("id"): el.get("href") for el in opf.iter() if _local(el.tag) == "item"}
    spine = [manifest.get(el.get("idref")) for el in opf.iter() if _local(el.tag) == "itemref"]
    title = next((" ".join((el.text or "").split()) for el in opf.iter() if _local(el.tag) == "title"), None)
    files = [posixpath.normpath(posixpath.join(base, urllib.parse.unquote(href))) for href in spine if href]
    return files, title or None
