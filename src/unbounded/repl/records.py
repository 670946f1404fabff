"""Records written as ``Field: value`` stanzas: the ``records`` REPL helper.

Many real files are lists of records in this shape, one stanza per record, stanzas separated by blank
lines, a long value continued on lines that start with a space: Debian's dpkg status and control
files, DEP-5 copyright files, mail and HTTP headers, RFC 822 style logs. ``records(text)`` turns such
a text into a list of dicts (field names as written; a field seen twice keeps its values joined by a
newline), so counting and summing over them is plain Python.

Worker-side module: standard library only, no ``typing`` or ``dataclasses``.
"""

from __future__ import annotations

import re

from .._lazy import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

_FIELD = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:\s?(.*)$")


def records(text: Any) -> list[dict[str, str]]:
    """The records of ``text``: one dict per blank-line-separated stanza of ``Field: value`` lines.

    Continuation lines (starting with a space or tab) extend the field before them; a lone ``.`` on a
    continuation line stands for an empty line, as in Debian files. Lines that are neither are kept
    under the field ``""`` so nothing is lost.
    """
    if not isinstance(text, str):
        raise TypeError("records takes one text (a str); for a dict context pass one value: records(context[key])")
    out: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                out.append(current)
            current, last = {}, None
            continue
        if line[0] in " \t" and last is not None:
            piece = line.strip()
            current[last] += "\n" + ("" if piece == "." else piece)
            continue
        m = _FIELD.match(line)
        if m is None:
            current[""] = (current[""] + "\n" + line) if "" in current else line
            last = ""
            continue
        name, value = m.group(1), m.group(2).strip()
        current[name] = (current[name] + "\n" + value) if name in current else value
        last = name
    if current:
        out.append(current)
    return out
