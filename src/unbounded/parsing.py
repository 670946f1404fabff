"""Reading a model reply: code blocks to run and a text-form ``FINAL(...)`` outside code."""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPEN_LINE = re.compile(r"[ \t]*```[ \t]*([A-Za-z0-9_+-]*)")
_CLOSE_LINE = re.compile(r"[ \t]*```[ \t]*")
_OPEN_FENCE = re.compile(r"^[ \t]*```[ \t]*(python|py|repl|python3)?[ \t]*\n", re.MULTILINE)
_CODE_LANGS = {"python", "py", "python3", "repl", ""}
_FINAL_START = re.compile(r"\bFINAL(_VAR)?\s*\(")
_SPECIAL = re.compile(r"[()\"'\\]")
MAX_FINAL_CANDIDATES = 64
MAX_FINAL_SPAN = 200_000


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
    for start, end, lang, code_start, code_end in _fenced(reply):
        outside.append(reply[pos:start])
        if lang.lower() in _CODE_LANGS:
            code = reply[code_start:code_end]
            if code.strip():
                blocks.append(code)
        else:
            outside.append(reply[start:end])
        pos = end
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


def _fenced(reply: str) -> list[tuple[int, int, str, int, int]]:
    """Closed fences as (start, end, lang, code start, code end), in one pass over the lines.

    A block opens on a line starting with ``` (its language is the word after it) and closes on the
    next line that is only ``` (surrounding blanks allowed). Once no closing line is left, nothing
    more can close. (A single regex with a lazy body was quadratic on replies of many open fences.)
    """
    starts = [0, *(m.end() for m in re.finditer("\n", reply))]
    n = len(starts)
    ends = [starts[k + 1] - 1 if k + 1 < n else len(reply) for k in range(n)]
    next_close: list[int | None] = [None] * (n + 1)
    for k in range(n - 1, -1, -1):
        next_close[k] = k if _CLOSE_LINE.fullmatch(reply, starts[k], ends[k]) else next_close[k + 1]
    found = []
    k = 0
    while k < n - 1:  # an opening line needs its newline, so the last line cannot open
        m = _OPEN_LINE.match(reply, starts[k], ends[k])
        if m is None:
            k += 1
            continue
        j = next_close[k + 1]
        if j is None:
            break
        found.append((starts[k], ends[j], m.group(1), starts[k + 1], starts[j]))
        k = j + 1
    return found


def find_text_final(text: str) -> FinalMarker | None:
    """The last ``FINAL(...)`` / ``FINAL_VAR(...)`` in prose, with balanced parentheses.

    Quotes around a plain answer are removed: ``FINAL("42")`` → ``42``. Candidates are tried from the
    last one back, at most ``MAX_FINAL_CANDIDATES`` of them, and the scan jumps between quote and
    parenthesis characters only, so a reply of thousands of ``FINAL(`` stays linear-time.
    """
    starts = list(_FINAL_START.finditer(text))
    for m in reversed(starts[-MAX_FINAL_CANDIDATES:]):
        start = m.end()
        inner = _balanced(text, start)
        if inner is None:
            inner = text[start:].strip()
            # Unbalanced: accept only a single-line answer (a reply cut at a stop sequence).
            if "\n" in inner:
                continue
        else:
            inner = inner.strip()
        if inner:
            return FinalMarker(_unquote(inner), bool(m.group(1)))
    return None


def _balanced(text: str, start: int) -> str | None:
    """``text[start:i]`` up to the ``)`` that closes an already open ``(``, or None (quotes respected)."""
    depth = 1
    quote: str | None = None
    skip = -1
    for sm in _SPECIAL.finditer(text, start, min(len(text), start + MAX_FINAL_SPAN)):
        i = sm.start()
        if i == skip:
            continue
        ch = sm.group()
        if quote:
            if ch == "\\":
                skip = i + 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return None


def _unquote(s: str) -> str:
    for q in ('"""', "'''", '"', "'"):
        if len(s) >= 2 * len(q) and s.startswith(q) and s.endswith(q):
            return s[len(q) : -len(q)]
    return s
