"""Notes that put a small model back on its own question when it copies the worked example.

Under the compact prompt a 1.5B model sometimes answers a new question with the example's code
word for word, search terms included (``grep("Rhodes-Ward", ...)``), sees nothing found, and does
it again until its turns run out. The engine spots the example's terms in the code and says so,
naming the question's own distinctive words: proper names and code-like tokens, the words a search
should start from.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from .prompts import COMPACT_EXAMPLE_TERMS, EXAMPLE_ECHO_NOTE

EXAMPLE_TERMS: tuple[str, ...] = tuple(ast.literal_eval(COMPACT_EXAMPLE_TERMS))

# A capitalised word, a word with a digit, underscore, hyphen or inner capital (``Flichon``, ``Q3``,
# ``_end_of_line``, ``woven-falcon``, ``iPhone``), or anything in backticks.
_TOKEN = re.compile(r"`([^`\n]{1,60})`|([A-Za-z_][\w'-]*)")
_SENTENCE_START = re.compile(r"(^|[.!?:]\s+|\n\s*)$")
#: Capitalised words that are instructions, not subjects (most others are dropped as sentence starts).
_NOT_SUBJECTS = frozenset({"answer", "question", "context"})


def echoed_example_terms(
    code_blocks: list[str], question: str, terms: tuple[str, ...] = EXAMPLE_TERMS, *, whole_words: bool = False
) -> list[str]:
    """The worked example's terms that appear in the code but not in the question (``whole_words``:
    only where they stand as whole identifiers, matched case by case)."""
    code = "\n".join(code_blocks)
    asked = question.lower()
    if whole_words:
        return [t for t in terms if re.search(rf"(?<!\w){re.escape(t)}(?!\w)", code) and t.lower() not in asked]
    return [t for t in terms if t.lower() in code.lower() and t.lower() not in asked]


def distinctive_terms(question: str, limit: int = 4) -> list[str]:
    """Words of the question worth searching for, in order: names, identifiers, quoted code."""
    found: list[str] = []
    for m in _TOKEN.finditer(question):
        quoted, word = m.group(1), m.group(2)
        if quoted is not None:
            term = quoted.strip()
            if not term or "answer" in term.lower() or "<" in term:
                continue
        else:
            term = word.strip("'-")
            if len(term) < 2 or term.lower() in _NOT_SUBJECTS:
                continue
            special = any(c.isdigit() or c in "_-" for c in term) or any(c.isupper() for c in term[1:])
            capital = term[0].isupper() and not _SENTENCE_START.search(question[: m.start()])
            if not (special or capital):
                continue
        if term not in found:
            found.append(term)
        if len(found) == limit:
            break
    return found


def example_echo_note(
    code_blocks: list[str], question: str, terms: tuple[str, ...] = EXAMPLE_TERMS, *, whole_words: bool = False
) -> str | None:
    """The note for a reply that searched the example's words, or None."""
    copied = echoed_example_terms(code_blocks, question, terms, whole_words=whole_words)
    if not copied:
        return None
    own = distinctive_terms(question)
    suggestion = (", such as " + ", ".join(repr(t) for t in own)) if own else ""
    return EXAMPLE_ECHO_NOTE.format(copied=", ".join(repr(t) for t in copied), suggestion=suggestion)


def turns_since_same_code(code_blocks: list[str], earlier_code: Sequence[list[str]]) -> int | None:
    """How many turns back the root ran this same code (1: the turn before), None if it never did.
    Lines are compared without their trailing spaces and blank lines: a small model that goes round
    in a circle repeats its code, not always its layout."""
    def normal(blocks: list[str]) -> list[str]:
        return ["\n".join(line.rstrip() for line in block.strip().splitlines() if line.strip()) for block in blocks]

    mine = normal(code_blocks)
    for ago, earlier in enumerate(reversed(earlier_code), 1):
        if normal(earlier) == mine:
            return ago
    return None
