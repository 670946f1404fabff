"""Keeping the root's history inside its model's window.

``fit_history`` drops the oldest turns (never the system prompt, the worked examples or the
question) when the history would not fit. Turns go in steps of ``TRIM_STEP``: dropping only what
the next turn needs would change the kept prefix every turn and re-evaluate the whole history each
time, defeating the backend's prompt cache (the embedded model's KV cache, providers' prefix caches).
"""

from __future__ import annotations

from .models.base import Message

#: History is trimmed in steps of this many turns, so the kept prefix stays the same for several turns.
TRIM_STEP = 4
#: Characters per token assumed when sizing the history: errs on the safe side for code and prose.
CHARS_PER_TOKEN = 3


def history_chars(messages: list[Message]) -> int:
    return sum(len(m.content) + 20 for m in messages)


def fit_history(
    messages: list[Message],
    window: int | None,
    reserve: int,
    *,
    head: int,
    aggressive: bool = False,
) -> list[Message]:
    """The messages to send: all of them if they fit ``window - reserve`` tokens, else the first
    ``head`` messages, a note saying how many turns were left out, and the newest turns.

    ``aggressive`` aims at 60% of the room (after the model said the prompt was too long).
    """
    if not window:
        return messages
    budget_chars = (window - reserve) * CHARS_PER_TOKEN * (0.6 if aggressive else 1.0)
    if history_chars(messages) <= budget_chars:
        return messages
    head_msgs, tail = messages[:head], messages[head:]
    head_size = history_chars(head_msgs)
    pairs = 0
    while len(tail) - 2 * pairs > 2 and head_size + history_chars(tail[2 * pairs :]) > budget_chars:
        pairs += 1
    if pairs:
        pairs = min(-(-pairs // TRIM_STEP) * TRIM_STEP, (len(tail) - 1) // 2)
        tail = tail[2 * pairs :]
        note = f"[{pairs} earlier turn(s) omitted to fit the model's window]"
        if tail and tail[0].role == "user":
            tail = [Message("user", note + "\n\n" + tail[0].content), *tail[1:]]
        else:
            tail = [Message("user", note), *tail]
    return head_msgs + tail
