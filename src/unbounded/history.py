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


#: Start compacting when the history is this full (a fraction of the window left after the reply).
COMPACT_AT = 0.85
#: The newest turns (assistant reply + output) a compaction keeps word for word.
KEEP_TURNS = 2
#: Characters of the compacted turns the summariser reads.
SUMMARY_INPUT_CHARS = 12_000

SUMMARY_PROMPT = """\
Below are earlier steps of a program that answers a question by running Python code on some data. \
Write a short summary of what the steps did and what they found: the facts, numbers, names, file names, \
variable names the code created, and what is still unknown. Do not invent anything.

Question: {question}

Steps:
{steps}

Summary:"""


def needs_compaction(messages: list[Message], window: int | None, reserve: int, threshold: float | None) -> bool:
    """Whether the history fills more than ``threshold`` of the window's room for a prompt."""
    if not window or threshold is None:
        return False
    return history_chars(messages) > threshold * (window - reserve) * CHARS_PER_TOKEN


def compactable(messages: list[Message], head: int) -> tuple[int, int] | None:
    """The (start, end) of the turns a compaction may summarise: after the head, before the newest
    ``KEEP_TURNS`` turns; None when there is nothing worth summarising."""
    end = len(messages) - 2 * KEEP_TURNS
    if end - head < 2:
        return None
    if messages[end].role != "assistant":  # keep a turn whole: cut before an assistant reply
        end -= 1
    return (head, end) if end - head >= 2 else None


def summary_prompt(question: str, turns: list[Message]) -> str:
    steps = "\n\n".join(f"[{'code' if m.role == 'assistant' else 'output'}]\n{m.content}" for m in turns)
    if len(steps) > SUMMARY_INPUT_CHARS:
        half = SUMMARY_INPUT_CHARS // 2
        steps = f"{steps[:half]}\n... [middle steps left out] ...\n{steps[-half:]}"
    return SUMMARY_PROMPT.format(question=question, steps=steps)


def summary_message(summary: str, turns: int) -> Message:
    return Message(
        "user",
        f"[Summary of {turns} earlier turn(s), compacted to fit the model's window; the REPL's variables are "
        f"unchanged]\n{summary.strip()}",
    )
