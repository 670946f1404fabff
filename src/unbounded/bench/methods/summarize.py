"""The summary agent: read the context in window-sized parts, carrying notes, then answer from them.

When the whole context fits the window it is answered in one call, like the paper's summary agent,
which only summarises once its window fills.
"""

from __future__ import annotations

import time

from ...models import LM, Message
from ..tasks.base import TaskItem
from .base import SYSTEM_PROMPT, Caller, MethodConfig, MethodResult, user_prompt
from .direct import direct_messages
from .render import render_context


def step_messages(item: TaskItem, notes: str, part: str, index: int) -> list[Message]:
    body = (
        "You are reading a long context one part at a time. Afterwards you will have to answer the "
        f"question below from your notes alone, without seeing the context again.\n\n"
        f"{user_prompt(item.question, item.answer_format)}\n\n"
        f"Your notes from the earlier parts:\n<<<\n{notes or '(none yet)'}\n>>>\n\n"
        f"Part {index + 1} of the context:\n<<<\n{part}\n>>>\n\n"
        "Rewrite your notes so that they keep everything from the old notes and from this part that "
        "could help answer the question: exact names, identifiers, numbers, dates and running counts "
        "or tallies. Reply with the updated notes only."
    )
    return [Message("system", SYSTEM_PROMPT), Message("user", body)]


def final_messages(item: TaskItem, notes: str, parts: int) -> list[Message]:
    body = (
        f"You read a long context in {parts} parts and kept these notes:\n<<<\n{notes}\n>>>\n\n"
        f"Answer from the notes.\n\n{user_prompt(item.question, item.answer_format)}"
    )
    return [Message("system", SYSTEM_PROMPT), Message("user", body)]


async def run_summarize(lm: LM, item: TaskItem, config: MethodConfig | None = None) -> MethodResult:
    config = config or MethodConfig()
    started = time.perf_counter()
    call = Caller(lm, config)
    text = render_context(item.context)
    whole = call.fit(text, lambda t: direct_messages(t, item, len(text)), config.max_answer_tokens)
    if not whole.truncated:
        answer = await call(whole.messages, config.max_answer_tokens)
        return MethodResult(
            method="summarize",
            answer=answer,
            usage=call.usage,
            seconds=time.perf_counter() - started,
            calls=call.usage.calls,
            notes={"parts": 0, "fits_window": True, "window": call.window},
        )

    notes = ""
    cursor = 0
    parts = 0
    while cursor < len(text):
        # Each part is measured with the notes it actually carries, so growing notes shrink the part.
        # Parts are sliced lazily (at most a window's worth), never copying the whole remainder.
        window_chars = int(call.window * config.chars_per_token * 2)
        rest = text[cursor : cursor + window_chars]
        fitted = call.fit(rest, lambda t, n=notes, i=parts: step_messages(item, n, t, i), config.summary_tokens)
        if fitted.kept_chars == 0:
            raise RuntimeError("summarize: the window is too small for the question and the notes")
        notes = (await call(fitted.messages, config.summary_tokens)).strip()
        cursor += fitted.kept_chars
        while cursor < len(text) and text[cursor] == "\n":
            cursor += 1
        parts += 1
    answer = await call(final_messages(item, notes, parts), config.max_answer_tokens)
    return MethodResult(
        method="summarize",
        answer=answer,
        usage=call.usage,
        seconds=time.perf_counter() - started,
        calls=call.usage.calls,
        notes={"parts": parts, "fits_window": False, "final_notes_chars": len(notes), "window": call.window},
    )
