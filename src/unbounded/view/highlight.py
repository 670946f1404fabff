"""Syntax highlighting of model code and replies with Pygments (HTML with CSS classes)."""

from __future__ import annotations

import html
import re
from functools import lru_cache

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"", "python", "py", "repl", "python3"}


@lru_cache(maxsize=1)
def _formatter() -> HtmlFormatter:
    return HtmlFormatter(nowrap=True)


@lru_cache(maxsize=1)
def _lexer() -> PythonLexer:
    return PythonLexer(stripnl=False, ensurenl=False)


def code_html(code: str) -> str:
    """Python source as highlighted HTML (spans only; the caller wraps it in ``<pre>``)."""
    return highlight(code, _lexer(), _formatter())


def reply_html(text: str) -> str:
    """A model reply: prose escaped, fenced Python blocks highlighted, fences kept visible."""
    parts: list[str] = []
    pos = 0
    for m in _FENCE.finditer(text):
        parts.append(html.escape(text[pos : m.start()]))
        tag, body = m.group(1), m.group(2)
        inner = code_html(body) if tag.lower() in _PYTHON_TAGS else html.escape(body)
        closed = m.group(0).endswith("```")
        parts.append(
            f'<span class="fence">```{html.escape(tag)}</span>\n<span class="hl">{inner}</span>'
            + ('<span class="fence">```</span>' if closed else "")
        )
        pos = m.end()
    parts.append(html.escape(text[pos:]))
    return "".join(parts)


@lru_cache(maxsize=1)
def stylesheet() -> str:
    """CSS for the highlighted spans, scoped to ``.hl`` (Pygments' unscoped rules and background dropped)."""
    rules = HtmlFormatter(style="friendly").get_style_defs(".hl").splitlines()
    return "\n".join(r for r in rules if r.startswith(".hl .") and "hll" not in r)
