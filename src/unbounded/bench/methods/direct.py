"""The model used directly: the context, cut to its window if needed (head kept), then the question."""

from __future__ import annotations

import time

from ...models import LM, Message
from ..tasks.base import TaskItem
from .base import SYSTEM_PROMPT, Caller, MethodConfig, MethodResult, user_prompt
from .render import render_context


def direct_messages(context_text: str, item: TaskItem, total_chars: int) -> list[Message]:
    note = ""
    if len(context_text) < total_chars:
        note = (
            f"\n[The context was cut to fit: only its first {len(context_text):,} of "
            f"{total_chars:,} characters are shown.]\n"
        )
    body = f"Context:\n<<<\n{context_text}\n>>>\n{note}\n{user_prompt(item.question, item.answer_format)}"
    return [Message("system", SYSTEM_PROMPT), Message("user", body)]


async def run_direct(lm: LM, item: TaskItem, config: MethodConfig | None = None) -> MethodResult:
    config = config or MethodConfig()
    started = time.perf_counter()
    call = Caller(lm, config)
    text = render_context(item.context)
    fitted = call.fit(text, lambda t: direct_messages(t, item, len(text)), config.max_answer_tokens)
    answer = await call(fitted.messages, config.max_answer_tokens)
    return MethodResult(
        method="direct",
        answer=answer,
        usage=call.usage,
        seconds=time.perf_counter() - started,
        calls=call.usage.calls,
        notes={
            "truncated": fitted.truncated,
            "kept_chars": fitted.kept_chars,
            "total_chars": fitted.total_chars,
            "kept_fraction": fitted.kept_chars / max(fitted.total_chars, 1),
            "window": call.window,
        },
    )
