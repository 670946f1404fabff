"""Checks on a literal final answer before the engine accepts it.

Small models answer without looking: they copy the "e.g." of a question (``FINAL("12345")``) or
write a value they were never shown. A reply that does nothing but give a literal ``FINAL(...)`` is
refused once when it comes before any code read a context longer than its preview, and — under the
compact prompt of small models — once when the value occurs nowhere in the question or in any output
the model was shown. The model is told why; an answer it insists on is taken on the next turn, so a
guard can cost a turn but never an answer.
"""

from __future__ import annotations

import ast

from .context import PREVIEW_CHARS, ContextInfo
from .parsing import ParsedReply
from .prompts import PREMATURE_FINAL_NOTE, UNGROUNDED_FINAL_NOTE


def context_unseen(info: ContextInfo) -> bool:
    """Whether the model has not been shown all of the context (it is longer than a preview)."""
    return info.total_chars > PREVIEW_CHARS


def literal_final(parsed: ParsedReply) -> str | None:
    """The answer of a reply that does nothing but give a literal FINAL (no code that reads anything),
    or None for any other reply."""
    if not parsed.code_blocks:
        return parsed.final.value if parsed.final is not None and not parsed.final.is_var else None
    if not any("FINAL" in code for code in parsed.code_blocks):
        return None  # no answer given at all: nothing to check (and no parse on every turn)
    answer = None
    for code in parsed.code_blocks:
        try:
            tree = ast.parse(code)
        except SyntaxError:
            return None
        for stmt in tree.body:
            call = stmt.value if isinstance(stmt, ast.Expr) else None
            if not (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id in ("FINAL", "print")
                and all(is_literal(a) for a in call.args)
                and not call.keywords
            ):
                return None
            if call.func.id == "FINAL" and answer is None:
                arg = call.args[0] if call.args else None
                answer = "" if arg is None else str(arg.value) if isinstance(arg, ast.Constant) else ast.unparse(arg)
    return answer


def is_literal(node: ast.expr) -> bool:
    """A value written out in the code (``"7731"``, ``-3``, ``(10, 20)``), not computed from anything."""
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def grounded(answer: str, seen: list[str]) -> bool:
    """Whether a literal answer occurs in some text the model was shown."""
    needle = answer.strip().strip("\"'`").strip().lower()
    return bool(needle) and any(needle in text.lower() for text in seen)


class AnswerGuard:
    """One RLM's guard: what the model was shown so far and which refusals it has had."""

    def __init__(self, question: str, context_unseen: bool, check_grounding: bool):
        self.seen = [question]
        self.context_unseen = context_unseen
        self.check_grounding = check_grounding
        self.refused: set[str] = set()

    def observe(self, outputs: list[str]) -> None:
        """Record outputs shown to the model."""
        self.seen.extend(outputs)

    def refusal(self, iteration: int, parsed: ParsedReply) -> str | None:
        """The note that refuses this reply's final answer, or None to go on as usual."""
        answer = literal_final(parsed)
        if answer is None:
            return None
        if iteration == 1 and self.context_unseen and "blind" not in self.refused:
            self.refused.add("blind")
            return PREMATURE_FINAL_NOTE
        if self.check_grounding and "ungrounded" not in self.refused and not grounded(answer, self.seen):
            self.refused.add("ungrounded")
            return UNGROUNDED_FINAL_NOTE.format(value=answer[:200])
        return None
