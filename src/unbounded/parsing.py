"""Reading a model reply: code blocks to run and a text-form ``FINAL(...)`` outside code."""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.DOTALL | re.MULTILINE)
_OPEN_FENCE = re.compile(r"^[ \t]*```[ \t]*(python|py|repl|python3)?[ \t]*\n", re.MULTILINE)
_CODE_LANGS = {"python", "py", "python3", "repl", ""}
_FINAL_START = re.compile(r"\bFINAL(_VAR)?\s*\(")


@dataclass(frozen=True, slots=True)
class FinalMarker:
    """A text-form final: ``FINAL(answer text)`` or ``FINAL_VAR(name)``."""

    value: str
    is_var: bool


@dataclass(frozen=True, slots=True)
class ParsedReply:
    code_blocks: list[str]
    final: FinalMarker | None
    text_outside_code: str


def parse_reply(reply: str) -> ParsedReply:
    """Split a reply into python code blocks (```python / ```repl / bare ```) and the text around them.

    An unterminated last fence (the model stopped mid-block, or at a stop sequence) still counts as code.
    """
    blocks: list[str] = []
    outside: list[str] = []
    pos = 0
    for m in _FENCE.finditer(reply):
        lang = m.group(1).lower()
        outside.append(reply[pos : m.start()])
        if lang in _CODE_LANGS:
            code = m.group(2)
            if code.strip():
                blocks.append(code)
        else:
            outside.append(m.group(0))
        pos = m.end()
    rest = reply[pos:]
    dangling = _OPEN_FENCE.search(rest)
    if dangling:
        outside.append(rest[: dangling.start()])
        code = rest[dangling.end() :]
        if code.strip():
            blocks.append(code)
    else:
        outside.append(rest)
    text = "".join(outside)
    return ParsedReply(blocks, find_text_final(text), text.strip())


def find_text_final(text: str) -> FinalMarker | None:
    """The last ``FINAL(...)`` / ``FINAL_VAR(...)`` in prose, with balanced parentheses.

    Quotes around a plain answer are removed: ``FINAL("42")`` → ``42``.
    """
    found: FinalMarker | None = None
    for m in _FINAL_START.finditer(text):
        start = m.end()
        depth = 1
        i = start
        quote: str | None = None
        while i < len(text) and depth:
            ch = text[i]
            if quote:
                if ch == "\\":
                    i += 1
                elif ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            i += 1
        if depth:
            inner = text[start:].strip()
            # Unbalanced: accept only a single-line answer (a reply cut at a stop sequence).
            if "\n" in inner:
                continue
        else:
            inner = text[start : i - 1].strip()
        if not inner:
            continue
        found = FinalMarker(_unquote(inner), bool(m.group(1)))
    return found


def _unquote(s: str) -> str:
    for q in ('"""', "'''", '"', "'"):
        if len(s) >= 2 * len(q) and s.startswith(q) and s.endswith(q):
            return s[len(q) : -len(q)]
    return s
